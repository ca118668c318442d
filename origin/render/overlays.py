"""The pipeline steps of the overlay families: faces, auto=enhance/redeye, blend, watermark, text.

Each step reads its options off the spec into the option dataclass of its render module
(`faces`, `enhance`, `blend`, `watermark`, `text`), so those modules stay pure functions of
pixels and options; the order they run in is declared in `pipeline.PIPELINE`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from ..spec import TransformSpec
from . import blend, enhance, faces, text, watermark
from .steps import Context, crop_to

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Options = TypeVar("Options", bound="DataclassInstance")


def options(kind: type[Options], spec: TransformSpec, family: str, **given: Any) -> Options:
    """The option dataclass `kind` of an overlay family read off the spec: each option is the
    parameter `{family}-{option}` (field `blend_mode` for `mode`), unless `given`."""
    copied = {f.name: getattr(spec, f"{family}_{f.name}") for f in dataclasses.fields(kind) if f.name not in given}
    return kind(**copied, **given)


def needs_faces(spec: TransformSpec) -> bool:
    """Face detection shapes the geometry: fit=facearea, or crop=faces with fit=crop."""
    return spec.fit == "facearea" or ("faces" in spec.crop and spec.fit in ("crop", "min"))


def find_faces(ctx: Context) -> None:
    """Detect faces on the oriented, trimmed image; boxes kept at the logical scale.

    An animation keeps one geometry for every frame: its faces are found on the first frame
    and handed to the others (`ctx.faces` already set), as its trim box is (README)."""
    if not needs_faces(ctx.spec) or ctx.faces is not None:
        return
    found = faces.detect(ctx.image)
    fx, fy = ctx.logical[0] / ctx.image.width, ctx.logical[1] / ctx.image.height
    ctx.faces = [face.scaled(fx, fy) for face in found]


def face_area(ctx: Context) -> None:
    """fit=facearea: cut the chosen face (`faceindex`, 1 = the largest) grown by `facepad`, at
    the requested aspect ratio; the plan then sizes that region as fit=crop (or clip, with
    one side given). Shares of the source (`w=0.5`) become pixels first: they were asked
    of the source, not of the face."""
    spec = ctx.spec
    if spec.fit != "facearea":
        return
    lw, lh = ctx.logical
    w = None if spec.w is None else spec.w * lw if spec.w < 1 else spec.w
    h = None if spec.h is None else spec.h * lh if spec.h < 1 else spec.h
    ratio = w / h if w is not None and h is not None else None
    ctx.spec = replace(spec, fit="crop" if ratio is not None else "clip", w=w, h=h)
    index = spec.faceindex - 1
    if ctx.faces and index < len(ctx.faces):
        crop_to(ctx, faces.face_area(ctx.faces[index], spec.facepad, ratio, lw, lh))


def centre_on_faces(ctx: Context) -> None:
    """crop=faces: the plan's crop region, moved to centre on every face found (else the
    other crop words, or the centre, decide as usual)."""
    if "faces" not in ctx.spec.crop or not ctx.faces or ctx.plan is None:
        return
    region = faces.centre_on(ctx.plan.region, faces.union(ctx.faces), *ctx.logical)
    ctx.plan = replace(ctx.plan, region=region, smart=None)


def auto_enhance(ctx: Context) -> None:
    if "enhance" in ctx.spec.auto:
        ctx.image = enhance.enhance(ctx.image)


def auto_redeye(ctx: Context) -> None:
    if "redeye" in ctx.spec.auto:
        ctx.image = enhance.redeye(ctx.image, faces.detect(ctx.image))


def draw_blend(ctx: Context) -> None:
    spec = ctx.spec
    if spec.blend is None and spec.blend_color is None:
        return
    opts = options(blend.BlendOptions, spec, "blend", inherit=spec.blend_size == "inherit")
    layer = None
    if ctx.blend is not None:
        layer = blend.load_blend(ctx.blend, ctx.image.width, ctx.image.height, opts, ctx.config)
    ctx.image = blend.blend(ctx.image, layer, opts)


def draw_mark(ctx: Context) -> None:
    if ctx.mark is None:
        return
    opts = options(watermark.MarkOptions, ctx.spec, "mark", tile=ctx.spec.mark_tile == "grid")
    mark = watermark.load_mark(ctx.mark, ctx.image.width, ctx.image.height, opts, ctx.config)
    ctx.image = watermark.composite(ctx.image, mark, opts)


def draw_text(ctx: Context) -> None:
    spec = ctx.spec
    if spec.txt is None:
        return
    opts = options(text.TextOptions, spec, "txt", text=spec.txt)
    ctx.image = text.draw(ctx.image, opts, ctx.config.text)
