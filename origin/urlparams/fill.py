"""`fill=gradient` and its details, from imgix's documentation pages (its spec file predates
them): the gradient's type, colours, direction, radial centre and radii, and colour space."""

from __future__ import annotations

from ..errors import InvalidParam
from ..spec import TransformSpec
from .table import Family, Param
from .values import choice, color_pair, decimal, integer, word_list

SIDES = frozenset({"top", "bottom", "left", "right"})
SPACES = ("srgb", "linear", "oklab", "hsl", "lch")

LINEAR = ("fill_gradient_linear", "fill_gradient_linear_direction")
RADIAL = ("fill_gradient_radial", "fill_gradient_radial_x", "fill_gradient_radial_y", "fill_gradient_radial_radius")
GRADIENT = ("fill_gradient_type", "fill_gradient_cs", *LINEAR, *RADIAL)


def direction(name: str, raw: str) -> tuple[str, ...]:
    words = word_list(name, raw, SIDES)
    if {"top", "bottom"} <= set(words) or {"left", "right"} <= set(words) or len(words) > 2:
        raise InvalidParam(f"{name} takes one side, or one vertical and one horizontal (top,right)")
    return words


def position(name: str, raw: str) -> float:
    """A share of the canvas in [0, 1] (0.5 is the centre), or pixels past 1."""
    value = decimal(name, raw)
    if value < 0:
        raise InvalidParam(f"{name} must be a share in [0, 1] or pixels, at least 0")
    return round(value, 6) if value <= 1 else float(min(int(value + 0.5), 100_000))


def radii(name: str, raw: str) -> tuple[int, int]:
    parts = raw.split(",")
    if len(parts) != 2:
        raise InvalidParam(f"{name} must be two radii in pixels: radius1,radius2")
    return integer(name, parts[0], 0, 100_000), integer(name, parts[1], 0, 100_000)


position.schema = {"type": "number", "minimum": 0, "description": "a share in [0, 1] or pixels past 1"}  # type: ignore[attr-defined]
radii.schema = {"type": "string", "description": "radius1,radius2 in pixels", "examples": ["10,50"]}  # type: ignore[attr-defined]
direction.schema = {"type": "string", "description": "top, bottom, left or right, or two (top,right)"}  # type: ignore[attr-defined]


def source_cap(name: str, raw: str) -> bool:
    """`fill-max=source` (any case). imgix ignores other values; we name the one there is instead,
    since a parameter silently ignored is a variant the user did not ask for."""
    if raw.lower() != "source":
        raise InvalidParam(f"{name} takes one value: source")
    return True


source_cap.schema = {"type": "string", "enum": ["source"], "description": "cap a fillmax canvas at the source size"}  # type: ignore[attr-defined]


def finish(spec: TransformSpec) -> TransformSpec:
    """The gradient's details act only with fill=gradient (which core keeps only on a fill
    canvas), the linear ones with the linear type, the radial ones with the radial."""
    if spec.fill != "gradient":
        forget: tuple[str, ...] = GRADIENT
    elif spec.fill_gradient_type == "radial":
        forget = LINEAR
    else:
        forget = RADIAL
    if spec.fit != "fillmax":
        forget = (*forget, "fill_max")  # it acts on fit=fillmax's canvas only
    return spec.forget(*forget)


FAMILY = Family(
    "fill",
    params=(
        Param("fill-gradient-type", choice(("linear", "radial"))),
        Param("fill-gradient-linear", color_pair),
        Param("fill-gradient-linear-direction", direction),
        Param("fill-gradient-radial", color_pair),
        Param("fill-gradient-radial-x", position),
        Param("fill-gradient-radial-y", position),
        Param("fill-gradient-radial-radius", radii),
        Param("fill-gradient-cs", choice(SPACES)),
        Param("fill-max", source_cap),
    ),
    finish=finish,
)
