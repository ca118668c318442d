"""`transparency=grid`: transparent areas show a checkerboard of `grid-colors` (default
D0D7DD and FFFFFF) in `grid-size` px squares (default 4), as image editors draw them."""

from __future__ import annotations

import pyvips

from ..spec import TransformSpec


def checkerboard(width: int, height: int, spec: TransformSpec) -> pyvips.Image:
    size = max(1, spec.grid_size)
    xy = pyvips.Image.xyz(width, height) / size
    parity = ((xy.extract_band(0).floor() + xy.extract_band(1).floor()) % 2) > 0
    first, second = (list(c[:3]) + [255] for c in spec.grid_colors)
    return parity.ifthenelse(second, first).cast("uchar").copy(interpretation="srgb")


def under(image: pyvips.Image, spec: TransformSpec) -> pyvips.Image:
    if not image.hasalpha():
        return image
    board = checkerboard(image.width, image.height, spec)
    return board.composite2(image, "over").cast("uchar")
