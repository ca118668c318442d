"""The watermark details and the blending family: `mark-w/h/x/y/fit/rot/tile/base`, `blend`
and every `blend-*` (drawn by render/watermark.py and render/blend.py).

Sizes take imgix's two forms: whole pixels 2-8192, or a share of the base image in
(0, 1] (strict: refused outside both). `mark-base` is a key prefix in our storage, never a
URL: it is joined to `mark` here, so `mark-base=logos/&mark=a.png` and `mark=logos/a.png`
are one variant. `blend` is a colour when it reads as one (hex or a colour keyword) and a
storage key otherwise; a colour moves to `blend-color`, so both spellings are one variant.
"""

from __future__ import annotations

import dataclasses

from ..errors import InvalidParam, ParamOutOfRange
from ..keys import validate_key
from ..spec import TransformSpec
from .table import Family, Param
from .values import alignment, angle, choice, clamped, color, decimal, integer, ranged, sides, storage_key

MAX_PIXELS = 8192
_SIDES = frozenset({"top", "bottom", "left", "right"})
BLEND_MODES = (
    "color", "burn", "dodge", "darken", "difference", "exclusion", "hardlight", "hue", "lighten",
    "luminosity", "multiply", "overlay", "saturation", "screen", "softlight", "normal",
)  # fmt: skip


def box_size(name: str, raw: str) -> float:
    """Pixels 2-8192, or a share of the base in (0, 1] (six decimals; 1 is the whole base)."""
    value = decimal(name, raw)
    if 0 < value <= 1:
        return max(round(value, 6), 0.000001)
    if 2 <= value <= MAX_PIXELS + 0.49:
        return float(int(value + 0.5))
    raise ParamOutOfRange(f"{name} must be between 2 and {MAX_PIXELS} pixels, or a share in (0, 1]")


def mark_base(name: str, raw: str) -> str:
    """A key prefix ("logos/" or "logos"), never a URL."""
    if "://" in raw or raw.startswith("//"):
        raise InvalidParam(f"{name} must be a key prefix in this origin's storage, not a URL")
    validate_key(raw.rstrip("/") + "/x")
    return raw.rstrip("/")


def blend(name: str, raw: str) -> object:
    """A colour (hex or keyword) or, failing that, a storage key."""
    try:
        return color(name, raw)
    except InvalidParam:
        return storage_key(name, raw)


def blend_crop(name: str, raw: str) -> tuple[str, ...]:
    return sides(name, raw, _SIDES | {"faces"})


_MARK = ("mark_w", "mark_h", "mark_fit", "mark_x", "mark_y", "mark_rot", "mark_tile", "mark_base")
_BLEND = tuple(f.name for f in dataclasses.fields(TransformSpec) if f.name.startswith("blend_"))
_BLEND_IMAGE: tuple[str, ...] = ("blend_w", "blend_h", "blend_fit", "blend_crop", "blend_size", "blend_x")
_BLEND_IMAGE += ("blend_y", "blend_align", "blend_pad")


def finish(spec: TransformSpec) -> TransformSpec:
    """mark-base joins mark; without a mark its details are inert. A blend colour given as
    `blend` becomes `blend-color`; a colour covers the image, so the image-placing
    parameters are inert with it, as every blend-* is without a blend."""
    if spec.mark_base is not None and spec.mark is not None:
        spec = dataclasses.replace(spec, mark=validate_key(f"{spec.mark_base}/{spec.mark.lstrip('/')}"))
    spec = spec.forget("mark_base")
    if spec.mark is None:
        spec = spec.forget(*_MARK)
    if spec.mark_w is not None or spec.mark_h is not None:
        spec = spec.forget("mark_scale")
    if spec.mark_w is None or spec.mark_h is None:
        spec = spec.forget("mark_fit")
    if spec.mark_tile is not None:
        spec = spec.forget("mark_align", "mark_x", "mark_y")
    if isinstance(spec.blend, tuple):
        if spec.blend_color is not None:
            raise InvalidParam("blend and blend-color both give a colour: give it once")
        spec = dataclasses.replace(spec, blend=None, blend_color=spec.blend)
    if spec.blend is not None and spec.blend_color is not None:
        raise InvalidParam("blend-color cannot be combined with a blend image (blend=<key>)")
    if spec.blend is None:
        spec = spec.forget(*(_BLEND_IMAGE if spec.blend_color is not None else _BLEND))
    elif spec.blend_fit != "crop":
        spec = spec.forget("blend_crop")
    return spec


def offset(name: str, raw: str) -> int:
    """Pixels from the top (imgix's strict minimum 0)."""
    return integer(name, raw, 0, 1_000_000)


box_size.schema = {  # type: ignore[attr-defined]
    "type": "number",
    "exclusiveMinimum": 0,
    "maximum": MAX_PIXELS,
    "description": "pixels 2-8192, or a share of the base image in (0, 1]",
}
mark_base.schema = {"type": "string", "description": "a key prefix in the same storage (not a URL)"}  # type: ignore[attr-defined]
blend.schema = {"type": "string", "description": "a colour, or the key of another image in the same storage"}  # type: ignore[attr-defined]
offset.schema = {"type": "integer", "minimum": 0}  # type: ignore[attr-defined]
blend_crop.schema = {"type": "string", "description": "comma-separated: top, bottom, left, right, faces"}  # type: ignore[attr-defined]

FAMILY = Family(
    "overlay",
    params=(
        Param("mark-w", box_size),
        Param("mark-h", box_size),
        Param("mark-fit", choice(("clip", "crop", "fill", "max", "scale"))),
        Param("mark-x", clamped(0, 1_000_000)),
        Param("mark-y", offset),
        Param("mark-rot", angle),
        Param("mark-tile", choice(("grid",))),
        Param("mark-base", mark_base),
        Param("blend", blend),
        Param("blend-color", color),
        Param("blend-mode", choice(BLEND_MODES)),
        Param("blend-alpha", ranged(0, 100)),
        Param("blend-align", alignment),
        Param("blend-pad", clamped(0, 2048)),
        Param("blend-x", clamped(0, 1_000_000)),
        Param("blend-y", clamped(0, 1_000_000)),
        Param("blend-w", box_size),
        Param("blend-h", box_size),
        Param("blend-fit", choice(("clamp", "clip", "crop", "scale", "max"))),
        Param("blend-crop", blend_crop),
        Param("blend-size", choice(("inherit",))),
    ),
    finish=finish,
)
