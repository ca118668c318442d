"""The render pipeline: bytes in, bytes out, as a declared list of small steps.

Reading `PIPELINE` tells the whole story of a render (the steps are in `steps.py`). The
deadline is checked between steps, and every image is registered with the guard so a
timeout can kill whatever libvips is computing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import pyvips

from ..errors import CorruptImage
from ..formats import Accepts, output_format
from ..geometry import plan
from ..spec import TransformSpec
from ..urlparams import density
from . import palette, pillow
from .budget import estimate
from .config import RenderConfig
from .encode import encode
from .faces import require as require_faces
from .guard import RenderGuard
from .overlays import (
    auto_enhance,
    auto_redeye,
    centre_on_faces,
    draw_blend,
    draw_mark,
    draw_text,
    face_area,
    find_faces,
    needs_faces,
)
from .probe import SourceInfo, check_animation_cost, check_frames, load, probe
from .steps import (
    Context,
    Step,
    adjust,
    adjust_tone,
    background,
    border,
    canvas,
    crop_rect,
    crop_region,
    focal_debug,
    make_plan,
    mask,
    orient,
    rect_box,
    resize,
    rotate_flip,
    to_srgb,
    transparency_grid,
    trim,
    turned,
)

_JPEG_SHRINKS = (8, 4, 2)
_ENCODING_AUTO = frozenset({"format", "compress"})
"""The `auto` words that choose how to encode, not what to draw."""


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    format: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class _Job:
    """What every pass of one render shares (each frame of an animation, a second decode after
    a trim): the spec, the output format, and the bytes of the other images it draws."""

    spec: TransformSpec
    fmt: str
    config: RenderConfig
    mark: bytes | None
    blend: bytes | None
    images: Mapping[str, bytes]

    def context(
        self,
        image: pyvips.Image,
        logical: tuple[int, int],
        smart_allowed: bool = True,
        trim_box: tuple[int, int, int, int] | None = None,
    ) -> Context:
        """A fresh context for one pass over `image` (`logical`: its size at the source's scale);
        the job's fields are the context's fields of the same names."""
        shared = {f.name: getattr(self, f.name) for f in fields(self)}
        return Context(image=image, logical=logical, smart_allowed=smart_allowed, trim_box=trim_box, **shared)


PIPELINE: tuple[Step, ...] = (
    orient,
    crop_rect,
    trim,
    rotate_flip,
    find_faces,
    face_area,
    make_plan,
    centre_on_faces,
    crop_region,
    resize,
    to_srgb,
    auto_enhance,
    auto_redeye,
    adjust,
    adjust_tone,
    canvas,
    focal_debug,
    draw_blend,
    draw_mark,
    draw_text,
    border,
    mask,
    transparency_grid,
    background,
)


_UP_TO_TRIM = PIPELINE[: PIPELINE.index(trim) + 1]
_AFTER_TRIM = PIPELINE[PIPELINE.index(trim) + 1 :]


def _run(ctx: Context, guard: RenderGuard, steps: tuple[Step, ...] = PIPELINE) -> pyvips.Image:
    for step in steps:
        guard.check()
        step(ctx)
        guard.track(ctx.image)
    return ctx.image


def _logical_before_load(info: SourceInfo, spec: TransformSpec) -> tuple[int, int]:
    width, height = info.width, info.height
    if spec.rect is not None:
        x, y, w, h = rect_box(spec.rect, (width, height))
        width, height = max(1, min(w, width - x)), max(1, min(h, height - y))
    return turned((width, height), spec.rot)


def _output_size(info: SourceInfo, spec: TransformSpec, config: RenderConfig) -> tuple[int, int]:
    """The output's size from the header: an upper bound (a trim can only make it smaller)."""
    return plan(*_logical_before_load(info, spec), spec, config.max_output_side).output_size


def jpeg_shrink(
    info: SourceInfo, spec: TransformSpec, config: RenderConfig, logical: tuple[int, int] | None = None
) -> int:
    """The largest JPEG shrink-on-load factor whose decode still covers the output (none for
    fit=facearea, whose region is only known once the faces are found).

    `logical` is the size the plan starts from when it is known better than the header says
    (after a trim); by default the header's, after `rect` and `rot`.
    """
    if spec.fit == "facearea" or spec.orient is not None:
        return 1
    pre = plan(*(logical or _logical_before_load(info, spec)), spec, config.max_output_side)
    _, _, rw, rh = pre.region
    needed = max(pre.size[0] / rw, pre.size[1] / rh)
    for factor in _JPEG_SHRINKS:
        if needed * factor <= 1:
            return factor
    return 1


def _needs_random_access(info: SourceInfo, spec: TransformSpec) -> bool:
    """Steps that read the image twice or out of order (rotation, trim, smart crop, blurred fill,
    face detection, auto=enhance's levels)."""
    smart = any(word in spec.crop for word in ("entropy", "edges")) or needs_faces(spec)
    smart = smart or "redeye" in spec.auto or "enhance" in spec.auto
    return bool(
        info.orientation != 1
        or spec.orient is not None
        or spec.rot
        or spec.flip
        or spec.trim
        or smart
        or spec.fill in ("blur", "gradient")
    )


def _require_faces(spec: TransformSpec) -> None:
    """501 naming the `faces` extra before any decoding, when a face parameter cannot be served."""
    asked = [
        name
        for name, on in (
            ("fit=facearea", spec.fit == "facearea"),
            ("crop=faces", "faces" in spec.crop),
            ("auto=redeye", "redeye" in spec.auto),
            ("blend-crop=faces", "faces" in spec.blend_crop),
        )
        if on
    ]
    if asked:
        require_faces(asked[0])


def _only_recompresses(spec: TransformSpec, fmt: str, info: SourceInfo, config: RenderConfig) -> bool:
    """True when the source itself is a valid answer: same format, upright, within the output
    cap, no metadata or profile to strip, already 8-bit sRGB (or grey), and no animation the
    render would have reduced to one frame. Of `auto`, only `format` and `compress` pick an
    encoding; `enhance` and `redeye` change pixels."""
    encoding_only = tuple(word for word in spec.auto if word not in _ENCODING_AUTO)
    bare = replace(spec, q=None, auto=encoding_only, lossless=False, fm=None, dl=None)
    return (
        bare == TransformSpec()
        and fmt == info.format
        and info.orientation == 1
        and not info.has_metadata
        and info.plain_colour
        and max(info.width, info.height) <= config.max_output_side
        and (config.animation or not info.animated)
    )


def render(
    data: bytes,
    spec: TransformSpec,
    accepts: Accepts,
    config: RenderConfig,
    mark: bytes | None,
    guard: RenderGuard,
    blend: bytes | None = None,
    images: Mapping[str, bytes] | None = None,
) -> Rendered:
    """Render `data` per `spec` (`mark` and `blend`: the bytes of those keys). Raises the typed
    4xx/501/503 errors, never pyvips.Error.

    The output format is chosen here, from the source's header, so the event loop never
    parses image headers. `images` holds the other stored images the spec names (`mask`).
    With `palette`, the body is the rendered image's colour palette (CSS or JSON) instead.
    """
    _require_faces(spec)
    spec = density.fold(spec, spec.dpr)  # dpr stays in a spec only beside a share of the source
    info = probe(data, config)
    fmt = output_format(spec.fm, "format" in spec.auto, info.format, accepts, info.has_alpha)
    if spec.palette is not None:
        fmt = "png"
    animate = config.animation and fmt in ("gif", "webp") and info.animated
    if animate:
        check_frames(info, config)
        check_animation_cost(info, _output_size(info, spec, config), fmt, config)
    shrink = 1 if animate or info.format != "jpg" else jpeg_shrink(info, spec, config)
    cost = estimate(info, len(data), shrink) * (info.pages if animate else 1)
    try:
        with guard.reserve(cost):
            job = _Job(spec, fmt, config, mark, blend, images or {})
            if animate:
                image = _render_animation(data, job, guard)
            else:
                image = _render_still(data, info, job, guard, shrink)
            guard.check()
            if spec.palette is not None:
                body, fmt = palette.render(guard.track(image), spec)
            else:
                body = encode(guard.track(image), fmt, spec, config)
    except pyvips.Error:
        guard.check()
        raise CorruptImage("the image data is corrupt or truncated") from None
    if _only_recompresses(spec, fmt, info, config) and len(body) >= len(data):
        return Rendered(data, info.format, info.width, info.height)
    height = image.get("page-height") if animate else image.height
    return Rendered(body, fmt, image.width, height)


def _render_still(data: bytes, info: SourceInfo, job: _Job, guard: RenderGuard, shrink: int) -> pyvips.Image:
    image = guard.track(_load(data, info, job.spec, shrink, guard))
    ctx = job.context(image, (info.width, info.height))
    if job.spec.trim is None or shrink == 1:
        return _run(ctx, guard)
    # A trim is found on the shrunk decode: its box is within one shrunk pixel, which is at most one
    # output pixel while the decode covers the output. When the trim keeps so little that the decode
    # no longer covers it, decode again at the factor the trimmed size needs (rare: a small subject
    # on a wide border) rather than upscale.
    _run(ctx, guard, _UP_TO_TRIM)
    width, height = ctx.logical
    needed = jpeg_shrink(info, job.spec, job.config, turned((width, height), job.spec.rot))
    if needed < shrink:
        return _render_still(data, info, job, guard, needed)
    return _run(ctx, guard, _AFTER_TRIM)


def _load(data: bytes, info: SourceInfo, spec: TransformSpec, shrink: int, guard: RenderGuard) -> pyvips.Image:
    """The source decoded at 1/`shrink`: a shrunk JPEG by libjpeg-turbo where that gives libvips'
    own result for less CPU (see `pillow.py`), anything else by libvips."""
    if shrink > 1 and info.format == "jpg":
        decoded = pillow.decode_jpeg(data, load(data), shrink, guard)
        if decoded is not None:
            return decoded
    options: dict[str, object] = {"fail_on": "truncated"}
    if not _needs_random_access(info, spec):
        options["access"] = "sequential"
    if shrink > 1:
        options["shrink"] = shrink
    return load(data, **options)


def _render_animation(data: bytes, job: _Job, guard: RenderGuard) -> pyvips.Image:
    """Every frame through the same pipeline, with one size for all: smart crops are
    centred, and the first frame's trim box and faces are applied to every frame."""
    source = guard.track(pyvips.Image.new_from_buffer(data, "", n=-1, fail_on="truncated"))
    frame_height = source.get("page-height") if source.get_typeof("page-height") else source.height
    frames = []
    trim_box = None
    found = None
    for index in range(source.height // frame_height):
        frame = source.crop(0, index * frame_height, source.width, frame_height)
        ctx = job.context(frame, (frame.width, frame.height), smart_allowed=False, trim_box=trim_box)
        ctx.faces = found
        frames.append(_run(ctx, guard))
        trim_box, found = ctx.trim_box, ctx.faces
    joined = pyvips.Image.arrayjoin(frames, across=1).copy()
    joined.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    for field in ("delay", "loop", "gif-delay"):
        if source.get_typeof(field):
            joined.set_type(source.get_typeof(field), field, source.get(field))
    return joined
