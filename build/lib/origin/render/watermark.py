"""Composite a watermark (another key in our storage, never a URL) onto the image.

imgix semantics: `mark-scale` is the mark's width as a percentage of the base image's
width (without it the mark keeps its size, shrunk only to fit), `mark-align` places it
(default bottom,right), `mark-pad` keeps it that many pixels from the edges, and
`mark-alpha` sets its opacity.
"""

from __future__ import annotations

import pyvips

from ..spec import TransformSpec
from .config import RenderConfig
from .probe import STRICT_LOAD, probe


def load_mark(
    data: bytes, base_width: int, base_height: int, spec: TransformSpec, config: RenderConfig
) -> pyvips.Image:
    """Decode the mark at the size it will be drawn, in sRGB with an alpha band."""
    info = probe(data, config)
    if spec.mark_scale is not None:
        width = max(1, round(base_width * spec.mark_scale / 100))
        height = max(1, round(info.height * width / info.width))
    else:
        width, height = info.width, info.height
    box_w = max(1, base_width - 2 * spec.mark_pad)
    box_h = max(1, base_height - 2 * spec.mark_pad)
    if width > box_w or height > box_h:
        k = min(box_w / width, box_h / height)
        width, height = max(1, round(width * k)), max(1, round(height * k))
    mark = pyvips.Image.thumbnail_buffer(data, width, height=height, size="force", option_string=STRICT_LOAD)
    mark = mark.colourspace("srgb") if mark.interpretation != "srgb" else mark
    if not mark.hasalpha():
        mark = mark.bandjoin(255)
    if spec.mark_alpha < 100:
        mark = mark * [1, 1, 1, spec.mark_alpha / 100]
    return mark.cast("uchar")


def place(base_width: int, base_height: int, mark_width: int, mark_height: int, spec: TransformSpec) -> tuple[int, int]:
    """Top-left corner of the mark on the base image for `mark-align` and `mark-pad`."""
    pad = spec.mark_pad
    align = set(spec.mark_align)
    if "left" in align:
        x = pad
    elif "center" in align:
        x = (base_width - mark_width) // 2
    else:
        x = base_width - mark_width - pad
    if "top" in align:
        y = pad
    elif "middle" in align:
        y = (base_height - mark_height) // 2
    else:
        y = base_height - mark_height - pad
    return max(0, x), max(0, y)


def composite(image: pyvips.Image, mark: pyvips.Image, spec: TransformSpec) -> pyvips.Image:
    x, y = place(image.width, image.height, mark.width, mark.height, spec)
    had_alpha = image.hasalpha()
    base = image if had_alpha else image.bandjoin(255)
    out = base.composite2(mark, "over", x=x, y=y).cast("uchar")
    return out if had_alpha else out.extract_band(0, n=3)
