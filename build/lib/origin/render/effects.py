"""Colour adjustments, blur and sharpen on an 8-bit sRGB image (alpha left alone).

imgix documents what each parameter does, not its maths; these are the closest libvips
operations, with the mapping stated once here (and in the README):
- bri: add bri * 2.55 to each channel;     con: scale around mid-grey by 1 + con/100
- gam: out = in ^ (2 ^ (-gam/50))          sat: scale LCh chroma by 1 + sat/100
- hue: rotate LCh hue by `hue` degrees;    sepia: blend towards the sepia matrix by sepia%
- monochrome: blend towards the luminance tinted with the colour, by the colour's alpha
- invert: 255 - in;  blur: Gaussian sigma = blur/10;  sharp: unsharp mask, m2 = sharp/100*4
"""

from __future__ import annotations

from collections.abc import Callable

import pyvips

from ..spec import TransformSpec

_SEPIA = ((0.393, 0.769, 0.189), (0.349, 0.686, 0.168), (0.272, 0.534, 0.131))
_MAX_DIRECT_SIGMA = 10.0


def _on_colour(image: pyvips.Image, fn: Callable[[pyvips.Image], pyvips.Image]) -> pyvips.Image:
    """Apply `fn` to the colour bands only, keeping any alpha band as it was."""
    if image.hasalpha():
        colour = image.extract_band(0, n=image.bands - 1)
        alpha = image.extract_band(image.bands - 1)
        return fn(colour).cast("uchar").bandjoin(alpha)
    return fn(image).cast("uchar")


def has_adjustments(spec: TransformSpec) -> bool:
    return any((spec.bri, spec.con, spec.gam, spec.sat, spec.hue, spec.sepia, spec.monochrome, spec.invert))


def adjust(image: pyvips.Image, spec: TransformSpec) -> pyvips.Image:
    """Apply the colour adjustments that are set, in a fixed order."""
    if spec.bri:
        image = _on_colour(image, lambda c: c + spec.bri * 2.55)
    if spec.con:
        image = _on_colour(image, lambda c: (c - 128) * (1 + spec.con / 100) + 128)
    if spec.gam:
        exponent = 2 ** (-spec.gam / 50)
        image = _on_colour(image, lambda c: ((c / 255) ** exponent) * 255)
    if spec.sat or spec.hue:
        image = _on_colour(image, lambda c: _lch(c, 1 + spec.sat / 100, spec.hue))
    if spec.sepia:
        image = _on_colour(image, lambda c: c.recomb(_sepia_matrix(spec.sepia / 100)))
    if (tint := spec.monochrome) is not None:
        image = _on_colour(image, lambda c: _monochrome(c, tint))
    if spec.invert:
        image = _on_colour(image, lambda c: c.invert())
    return image


def _lch(colour: pyvips.Image, chroma: float, hue: int) -> pyvips.Image:
    lch = colour.colourspace("lch")
    return (lch * [1, chroma, 1] + [0, 0, hue]).colourspace("srgb")


def _sepia_matrix(amount: float) -> list[list[float]]:
    return [[(1 - amount) * (i == j) + amount * _SEPIA[i][j] for j in range(3)] for i in range(3)]


def _monochrome(colour: pyvips.Image, tint: tuple[int, int, int, int]) -> pyvips.Image:
    r, g, b, a = tint
    luminance = colour.colourspace("b-w").extract_band(0)
    tinted = luminance.bandjoin([luminance, luminance]) * [r / 255, g / 255, b / 255]
    strength = a / 255
    return colour * (1 - strength) + tinted * strength


def blur(image: pyvips.Image, amount: int) -> pyvips.Image:
    """Gaussian blur; large radii run on a reduced copy so the cost stays bounded."""
    sigma = amount / 10
    if sigma < 0.3:
        return image
    if sigma <= _MAX_DIRECT_SIGMA:
        return image.gaussblur(sigma)
    factor = sigma / _MAX_DIRECT_SIGMA
    small = image.resize(1 / factor)
    blurred = small.gaussblur(_MAX_DIRECT_SIGMA).resize(image.width / small.width, vscale=image.height / small.height)
    return blurred.crop(0, 0, min(image.width, blurred.width), min(image.height, blurred.height)).embed(
        0, 0, image.width, image.height, extend="copy"
    )


def sharpen(image: pyvips.Image, amount: float) -> pyvips.Image:
    if not amount:
        return image
    return image.sharpen(sigma=1.0, m2=amount / 100 * 4).cast("uchar")
