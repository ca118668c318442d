"""`fill=gradient`: the canvas fit=fill / fillmax pads is a linear or radial gradient (pyvips).

Between `fill-gradient-linear` (or `-radial`) colour1 and colour2, interpolated in
`fill-gradient-cs`. Without colours, imgix takes the image's vibrant dark and vibrant light:
here the `vibrant_dark` and `vibrant_light` that `palette=json` names (render/palette.py),
falling back to the image's darkest and lightest common colours.
"""

from __future__ import annotations

import pyvips

from ..spec import Color, TransformSpec
from . import palette

_SPACES = {"srgb": "srgb", "linear": "scrgb", "oklab": "lab", "lch": "lch", "hsl": "hsv"}
"""imgix's colour spaces on libvips' own: OKLab has no libvips equivalent, CIELAB is the
closest perceptual one; HSL is taken as HSV (libvips has no HSL). Hues interpolate as
numbers, without taking the shorter way round."""


def _ramp(width: int, height: int, spec: TransformSpec) -> pyvips.Image:
    """t in [0, 1] per pixel: 0 where colour1 is, 1 where colour2 is."""
    xy = pyvips.Image.xyz(width, height)
    x, y = xy.extract_band(0), xy.extract_band(1)
    if spec.fill_gradient_type == "radial":
        cx = _position(spec.fill_gradient_radial_x, width)
        cy = _position(spec.fill_gradient_radial_y, height)
        short = min(width, height)
        r1, r2 = spec.fill_gradient_radial_radius or (short / 8, short / 2)
        distance = ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5
        if r1 == r2:
            return (distance >= r1).ifthenelse(1.0, 0.0)
        return _clip((distance - r1) / (r2 - r1))
    # Linear: towards the named sides (default bottom: colour1 at the top, colour2 at the
    # bottom); two sides make a corner-to-corner diagonal.
    terms = []
    words = spec.fill_gradient_linear_direction
    if "right" in words or "left" in words:
        u = x / max(1, width - 1)
        terms.append(u if "right" in words else 1 - u)
    if "bottom" in words or "top" in words:
        v = y / max(1, height - 1)
        terms.append(v if "bottom" in words else 1 - v)
    total = terms[0] if len(terms) == 1 else terms[0] + terms[1]
    return _clip(total / len(terms))


def _position(value: float, side: int) -> float:
    """A share of the side in [0, 1], or pixels past 1."""
    return value * (side - 1) if value <= 1 else value


def _clip(t: pyvips.Image) -> pyvips.Image:
    return (t < 0).ifthenelse(0.0, (t > 1).ifthenelse(1.0, t))


def _colours(image: pyvips.Image, spec: TransformSpec) -> tuple[Color, Color]:
    given = spec.fill_gradient_radial if spec.fill_gradient_type == "radial" else spec.fill_gradient_linear
    if given is not None:
        return given
    dark, light = palette.vibrant(palette.sample(image))
    return (*dark, 255), (*light, 255)


def backdrop(image: pyvips.Image, size: tuple[int, int], spec: TransformSpec) -> pyvips.Image:
    """The gradient canvas, 8-bit sRGB with alpha (a colour's own alpha is kept)."""
    width, height = size
    first, second = _colours(image, spec)
    space = _SPACES[spec.fill_gradient_cs]
    ends = [
        pyvips.Image.black(1, 1).new_from_image(list(c[:3])).copy(interpretation="srgb").cast("uchar")
        for c in (first, second)
    ]
    if space != "srgb":
        ends = [e.colourspace(space) for e in ends]
    a, b = ([float(v) for v in e.getpoint(0, 0)] for e in ends)
    t = _ramp(width, height, spec)
    colour = t * [q - p for p, q in zip(a, b, strict=True)] + a
    alpha = t * (second[3] - first[3]) + first[3]
    if space != "srgb":
        colour = colour.copy(interpretation=space).colourspace("srgb")
    return colour.bandjoin(alpha).cast("uchar").copy(interpretation="srgb")
