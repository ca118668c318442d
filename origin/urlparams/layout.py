"""Size bounds, orientation, border and padding, mask, trim details, transparency grid."""

from __future__ import annotations

import dataclasses

from ..errors import InvalidParam
from ..spec import MASK_SHAPES, Color, TransformSpec
from .table import Family, Param
from .values import choice, clamped, clamped_decimal, color, color_pair, corners, integer, ranged, storage_key

ORIENTS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 90, 180, 270)
_SIDE_CAP = 2048
"""Per-side padding and border widths are clamped here, as `pad` is."""
DEFAULT_CORNER_RADIUS = 10
"""imgix's radius for `mask=corners` without `corner-radius`, in CSS pixels: written into the spec
here, so `dpr` scales it as it scales a given radius, and `corner-radius=10` is the same variant."""


def orient(name: str, raw: str) -> int:
    value = integer(name, raw, 0, 270)
    if value not in ORIENTS:
        raise InvalidParam(f"{name} must be one of {', '.join(map(str, ORIENTS))}")
    return value


def border(name: str, raw: str) -> tuple[int, Color]:
    width, sep, colour = raw.partition(",")
    if not sep:
        raise InvalidParam(f"{name} must be width,colour (e.g. 10,000000)")
    return clamped(1, _SIDE_CAP)(name, width), color(name, colour)  # type: ignore[return-value]


def mask(name: str, raw: str) -> str:
    """`ellipse`, `corners`, or another image in the same storage (never a URL)."""
    if raw in MASK_SHAPES:
        return raw
    return storage_key(name, raw)


def finish(spec: TransformSpec) -> TransformSpec:
    """Dependencies: size bounds act with fit=crop; border details need `border`; the mask
    background needs a mask, corner radii `mask=corners`; trim details need their trim mode;
    the grid details need `transparency`."""
    if spec.mask == "corners" and spec.corner_radius is None:
        spec = dataclasses.replace(spec, corner_radius=(DEFAULT_CORNER_RADIUS,) * 4)
    forget: list[str] = []
    if spec.fit != "crop":
        forget += ["min_w", "max_w", "min_h", "max_h"]
    if spec.border is None:
        forget += ["border_top", "border_right", "border_bottom", "border_left"]
        forget += ["border_radius", "border_radius_inner"]
    if spec.mask is None:
        forget.append("mask_bg")
    if spec.mask != "corners":
        forget.append("corner_radius")
    if spec.trim != "auto":
        forget += ["trim_md", "trim_sd"]
    if spec.trim is None:
        forget.append("trim_pad")
    if spec.transparency is None:
        forget += ["grid_colors", "grid_size"]
    if not forget:
        return spec
    return spec.forget(*forget)


FAMILY = Family(
    "layout",
    params=(
        Param("min-w", ranged(1, 8192)),
        Param("max-w", ranged(1, 8192)),
        Param("min-h", ranged(1, 8192)),
        Param("max-h", ranged(1, 8192)),
        Param("orient", orient),
        Param("pad-top", clamped(0, _SIDE_CAP)),
        Param("pad-right", clamped(0, _SIDE_CAP)),
        Param("pad-bottom", clamped(0, _SIDE_CAP)),
        Param("pad-left", clamped(0, _SIDE_CAP)),
        Param("border", border),
        Param("border-top", clamped(0, _SIDE_CAP)),
        Param("border-right", clamped(0, _SIDE_CAP)),
        Param("border-bottom", clamped(0, _SIDE_CAP)),
        Param("border-left", clamped(0, _SIDE_CAP)),
        Param("border-radius", corners),
        Param("border-radius-inner", corners),
        Param("mask", mask),
        Param("corner-radius", corners),
        Param("mask-bg", color),
        Param("trim-md", clamped_decimal(0, 255)),
        Param("trim-sd", clamped_decimal(0, 255)),
        Param("trim-pad", clamped(0, _SIDE_CAP)),
        Param("transparency", choice(("grid",))),
        Param("grid-colors", color_pair),
        Param("grid-size", ranged(0, 1024)),
    ),
    finish=finish,
)
