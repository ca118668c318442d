"""`auto=enhance` (automatic levels and a little colour) and `auto=redeye` (red pupils in faces).

enhance: the luminance's 0.5th and 99.5th percentiles are stretched to black and white
(one gain and offset for R, G and B alike, so hues stay put; the gain is capped at 2.5,
the stretch then centred on mid-grey, and an image already spanning the range is left as it is), then chroma is raised by 10%
in LCh.

redeye: within each detected face, the band where eyes are (the middle 80% of its width,
20% to 55% of its height down), a pixel whose red exceeds both green and blue by 1.6
times (and is above 60) has its red set to the mean of its green and blue: a red pupil
becomes a dark one, while skin (R/G ~1.3) and everything outside faces stay untouched.
"""

from __future__ import annotations

import pyvips

from .faces import Face

_LOW, _HIGH = 0.5, 99.5
_MAX_GAIN = 2.5
_CHROMA = 1.1
_RED_RATIO = 1.6
_RED_FLOOR = 60


def enhance(image: pyvips.Image) -> pyvips.Image:
    """Levels from the luminance percentiles, then chroma x1.1 (8-bit sRGB in and out)."""
    alpha = image.extract_band(3) if image.hasalpha() else None
    rgb = image.extract_band(0, n=3)
    grey = rgb.colourspace("b-w").extract_band(0).cast("uchar")
    low, high = grey.percent(_LOW), grey.percent(_HIGH)
    gain = min(_MAX_GAIN, 255 / max(1, high - low))
    if gain > 1.02:
        # Capped, the stretch is centred: the percentiles' midpoint goes to mid-grey.
        offset = -low * gain if gain < _MAX_GAIN else 127.5 - (low + high) / 2 * gain
        rgb = rgb.linear([gain] * 3, [offset] * 3)
    lch = rgb.cast("uchar").copy(interpretation="srgb").colourspace("lch")
    rgb = (lch * [1, _CHROMA, 1]).copy(interpretation="lch").colourspace("srgb").cast("uchar")
    return rgb.bandjoin(alpha) if alpha is not None else rgb


def eye_band(face: Face) -> tuple[int, int, int, int]:
    return face.x + face.w // 10, face.y + face.h // 5, max(1, face.w * 8 // 10), max(1, face.h * 35 // 100)


def redeye(image: pyvips.Image, found: list[Face]) -> pyvips.Image:
    """Red pupils within the faces' eye bands turned dark (8-bit sRGB in and out)."""
    for face in found:
        x, y, w, h = eye_band(face)
        x, y = max(0, x), max(0, y)
        w, h = min(w, image.width - x), min(h, image.height - y)
        if w <= 0 or h <= 0:
            continue
        band = image.crop(x, y, w, h)
        r, g, b = band[0], band[1], band[2]
        red = (r > (g * _RED_RATIO)) & (r > (b * _RED_RATIO)) & (r > _RED_FLOOR)
        fixed = ((g + b) / 2).cast("uchar")
        band = red.ifthenelse(fixed, r).bandjoin(band.extract_band(1, n=band.bands - 1))
        image = image.insert(band.cast("uchar").copy(interpretation=image.interpretation), x, y)
    return image
