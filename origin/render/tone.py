"""Exposure, highlights, shadows, vibrance, unsharp mask, noise reduction, pixellate,
halftone and duotone on an 8-bit sRGB image (alpha left alone).

imgix documents what each does, not its maths; these are the closest libvips operations,
stated once here (and in the README):
- exp: scale linear light by 2^(exp/50) (+-2 stops at +-100)
- high: pull CIELAB L above 50 towards 50 by -high/200 of the distance (so L 100 -> 75 at -100)
- shad: lift L below 50 towards 50 by shad/200 of the distance
- vib: scale LCh chroma by 1 + vib/100 * (1 - C/100): dull colours move most
- usm/usmrad: usm > 0 is libvips' sharpen (sigma usmrad/2, m2 usm/100*3); usm < 0 blends
  towards a Gaussian of that sigma by -usm%
- nr/nrs: an edge-keeping blur: Gaussian of sigma 0.5 + nr/25, kept only where it moves a pixel
  by less than (nrs+100)/5 levels (so a higher nrs smooths more edges); nr <= 0 does nothing
- px: the mean of each px x px block; htn: a dot screen of 2 + htn/7 px cells per channel
- duotone: luminance mapped from the first colour (shadows) to the second (highlights),
  blended by duotone-alpha%
"""

from __future__ import annotations

import pyvips

from ..spec import TransformSpec
from ..urlparams.tone import DEFAULT_NRS
from .effects import _on_colour

_GAMMA = 2.2


def has_tone(spec: TransformSpec) -> bool:
    return bool(
        spec.exp
        or spec.high
        or spec.shad
        or spec.vib
        or spec.usm
        or (spec.nr or 0) > 0
        or spec.px > 1
        or spec.htn
        or spec.duotone
    )


def apply(image: pyvips.Image, spec: TransformSpec) -> pyvips.Image:
    """Apply the tone operations that are set, in a fixed order."""
    if spec.exp:
        gain = 2 ** (spec.exp / 50)
        image = _on_colour(image, lambda c: ((c / 255) ** _GAMMA * gain) ** (1 / _GAMMA) * 255)
    if spec.high or spec.shad:
        image = _on_colour(image, lambda c: _tones(c, spec.high, spec.shad))
    if spec.vib:
        image = _on_colour(image, lambda c: _vibrance(c, spec.vib))
    if (spec.nr or 0) > 0:
        image = _on_colour(
            image, lambda c: _denoise(c, spec.nr or 0, spec.nrs if spec.nrs is not None else DEFAULT_NRS)
        )
    if spec.usm:
        image = _on_colour(image, lambda c: _unsharp(c, spec.usm, spec.usmrad))
    if spec.px > 1:
        image = pixellate(image, spec.px)
    if spec.htn:
        image = _on_colour(image, lambda c: _halftone(c, 2 + round(spec.htn / 7)))
    if spec.duotone:
        image = _on_colour(image, lambda c: _duotone(c, spec.duotone, spec.duotone_alpha))  # type: ignore[arg-type]
    return image


def _tones(colour: pyvips.Image, high: int, shad: float) -> pyvips.Image:
    lab = colour.colourspace("lab")
    lightness = lab.extract_band(0)
    above = (lightness > 50).ifthenelse(lightness - 50, 0)
    below = (lightness < 50).ifthenelse(50 - lightness, 0)
    lightness = lightness + above * (high / 200) + below * (shad / 200)
    return lightness.bandjoin(lab.extract_band(1, n=2)).copy(interpretation="lab").colourspace("srgb")


def _vibrance(colour: pyvips.Image, vib: int) -> pyvips.Image:
    lch = colour.colourspace("lch")
    chroma = lch.extract_band(1)
    dull = 1 - (chroma > 100).ifthenelse(100, chroma) / 100
    chroma = chroma * (dull * (vib / 100) + 1)
    return lch.extract_band(0).bandjoin([chroma, lch.extract_band(2)]).copy(interpretation="lch").colourspace("srgb")


def _unsharp(colour: pyvips.Image, usm: int, radius: float) -> pyvips.Image:
    sigma = max(0.5, radius / 2)
    if usm > 0:
        return colour.copy(interpretation="srgb").sharpen(sigma=sigma, m2=usm / 100 * 3)
    amount = -usm / 100
    return colour * (1 - amount) + colour.gaussblur(sigma) * amount


def _denoise(colour: pyvips.Image, nr: int, nrs: int) -> pyvips.Image:
    smooth = colour.gaussblur(0.5 + nr / 25)
    threshold = (nrs + 100) / 5
    near = (colour - smooth).abs() < threshold
    return near.ifthenelse(smooth, colour)


def pixellate(image: pyvips.Image, block: int) -> pyvips.Image:
    """Each block x block square becomes its mean colour (edge blocks too)."""
    width, height = image.width, image.height
    block = min(block, width, height)
    padded = image.embed(0, 0, -(-width // block) * block, -(-height // block) * block, extend="copy")
    blocks = padded.shrink(block, block).cast(image.format)
    return blocks.zoom(block, block).crop(0, 0, width, height)


def _halftone(colour: pyvips.Image, cell: int) -> pyvips.Image:
    """Per channel: a dot whose area follows the ink (255 - value) in each cell x cell square."""
    xy = pyvips.Image.xyz(cell, cell) - [(cell - 1) / 2, (cell - 1) / 2]
    distance = (xy.extract_band(0) ** 2 + xy.extract_band(1) ** 2) ** 0.5
    screen = distance / (cell / 2 * 2**0.5) * 255
    screen = screen.replicate(-(-colour.width // cell), -(-colour.height // cell)).crop(
        0, 0, colour.width, colour.height
    )
    ink = 255 - colour
    return (ink > screen).ifthenelse(0, 255)


def _duotone(colour: pyvips.Image, pair: tuple[tuple[int, ...], tuple[int, ...]], alpha: int) -> pyvips.Image:
    dark, light = (list(c[:3]) for c in pair)
    luminance = colour.colourspace("b-w").extract_band(0) / 255
    toned = luminance * [light[i] - dark[i] for i in range(3)] + dark
    strength = alpha / 100
    return colour * (1 - strength) + toned * strength
