"""Anti-aliased coverage masks (0-255, one band) drawn with libvips arithmetic: rounded
rectangles and ellipses, for borders and masks. No SVG: that loader stays blocked."""

from __future__ import annotations

import pyvips

Radii = tuple[int, int, int, int]
"""Top-left, top-right, bottom-right, bottom-left."""


def _clip01(value: pyvips.Image) -> pyvips.Image:
    value = (value < 0).ifthenelse(0, value)
    return (value > 1).ifthenelse(1, value)


def rounded_rect(
    width: int, height: int, radii: Radii, inset: tuple[int, int, int, int] = (0, 0, 0, 0)
) -> pyvips.Image:
    """255 inside the rectangle inset by (top, right, bottom, left), with rounded corners."""
    top, right, bottom, left = inset
    xy = pyvips.Image.xyz(width, height) + 0.5
    x, y = xy.extract_band(0), xy.extract_band(1)
    x0, y0, x1, y1 = left, top, width - right, height - bottom
    inside = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    mask = inside.ifthenelse(1.0, 0.0)
    limit = max(0, min(x1 - x0, y1 - y0) // 2)
    tl, tr, br, bl = (min(r, limit) for r in radii)
    for r, cx, cy, corner in (
        (tl, x0 + tl, y0 + tl, (x < x0 + tl) & (y < y0 + tl)),
        (tr, x1 - tr, y0 + tr, (x >= x1 - tr) & (y < y0 + tr)),
        (br, x1 - br, y1 - br, (x >= x1 - br) & (y >= y1 - br)),
        (bl, x0 + bl, y1 - bl, (x < x0 + bl) & (y >= y1 - bl)),
    ):
        if r <= 0:
            continue
        distance = ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5
        mask = (corner & inside).ifthenelse(_clip01(r - distance + 0.5), mask)
    return (mask * 255).cast("uchar")


def ellipse(width: int, height: int) -> pyvips.Image:
    """255 inside the ellipse inscribed in width x height, anti-aliased at its edge."""
    xy = pyvips.Image.xyz(width, height) + 0.5
    rx, ry = width / 2, height / 2
    d = (((xy.extract_band(0) - rx) / rx) ** 2 + ((xy.extract_band(1) - ry) / ry) ** 2) ** 0.5
    return (_clip01((1 - d) * min(rx, ry) + 0.5) * 255).cast("uchar")


def with_alpha(image: pyvips.Image) -> pyvips.Image:
    return image if image.hasalpha() else image.bandjoin(255)


def apply_coverage(image: pyvips.Image, coverage: pyvips.Image) -> pyvips.Image:
    """Multiply the image's alpha by `coverage` (0-255)."""
    image = with_alpha(image)
    colour = image.extract_band(0, n=image.bands - 1)
    alpha = (image.extract_band(image.bands - 1) * (coverage / 255)).cast("uchar")
    return colour.bandjoin(alpha)


def over_colour(image: pyvips.Image, colour: tuple[int, int, int, int]) -> pyvips.Image:
    """`image` composited over a flat layer of `colour` (alpha kept where the colour has some)."""
    layer = image.new_from_image(list(colour)).copy(interpretation="srgb")
    return layer.composite2(with_alpha(image), "over").cast("uchar")
