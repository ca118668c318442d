"""Composite a watermark (another key in our storage, never a URL) onto the image.

imgix semantics: the mark keeps its own size unless `mark-w`/`mark-h` (pixels, or a share
of the base image in (0, 1]) give it a box, fitted per `mark-fit`; without them
`mark-scale` sets its width as a percentage of the base image's width. It is shrunk
(never cut) to fit inside the image less `mark-pad`. `mark-rot` turns it (degrees,
counter-clockwise like `rot`, on a transparent background, so its box grows), `mark-alpha`
sets its opacity. It is placed by `mark-align` (default bottom,right) `mark-pad` pixels
from the edges, or at `mark-x`/`mark-y` (pixels from the top-left, each overriding its
axis); `mark-tile=grid` repeats it over the whole image, `mark-pad` apart, from the
top-left corner.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from ..geometry import aligned
from .config import RenderConfig
from .layer import decode, fitted, px
from .probe import probe


@dataclass(frozen=True, slots=True)
class MarkOptions:
    align: tuple[str, ...] = ("bottom", "right")
    alpha: int = 100
    scale: int | None = None
    pad: int = 5
    w: float | None = None
    h: float | None = None
    fit: str = "clip"
    x: int | None = None
    y: int | None = None
    rot: float = 0.0
    tile: bool = False


def load_mark(data: bytes, base_width: int, base_height: int, opts: MarkOptions, config: RenderConfig) -> pyvips.Image:
    """Decode the mark at the size it will be drawn, in sRGB with an alpha band."""
    info = probe(data, config)
    box = None
    if opts.w is not None or opts.h is not None:
        bw, bh = px(opts.w, base_width), px(opts.h, base_height)
        width, height = fitted((info.width, info.height), (bw, bh), opts.fit)
        # The box the mark is then cut (crop) or padded (fill) to.
        box = (bw, bh) if bw is not None and bh is not None and opts.fit in ("crop", "fill") else None
    elif opts.scale is not None:
        width = max(1, round(base_width * opts.scale / 100))
        height = max(1, round(info.height * width / info.width))
    else:
        width, height = info.width, info.height
    limit_w = max(1, base_width - 2 * opts.pad)
    limit_h = max(1, base_height - 2 * opts.pad)
    if box is None and (width > limit_w or height > limit_h):
        k = min(limit_w / width, limit_h / height)
        width, height = max(1, round(width * k)), max(1, round(height * k))
    mark = decode(data, width, height)
    if box is not None:
        # Cut (or padded) and shrunk while still a lazy pipeline: a box far larger than the base
        # (mark-w/h allow up to 8192) is never held whole, only the shrunk mark is.
        mark = _to_box(mark, box, opts.fit)
        if mark.width > limit_w or mark.height > limit_h:
            k = min(limit_w / mark.width, limit_h / mark.height)
            mark = mark.resize(k)
    # In memory: a mark is at most the base's size, and tiling or rotating reads it out of order.
    mark = mark.copy_memory()
    if opts.alpha < 100:
        mark = mark * [1, 1, 1, opts.alpha / 100]
    turn = opts.rot % 360
    if turn in (90, 180, 270):
        mark = mark.rot(f"d{360 - int(turn)}")
    elif turn:
        mark = mark.rotate(-turn, background=[0, 0, 0, 0])
    return mark.cast("uchar").copy_memory()


def _to_box(mark: pyvips.Image, box: tuple[int, int], fit: str) -> pyvips.Image:
    bw, bh = box
    if fit == "crop":
        return mark.crop((mark.width - bw) // 2, (mark.height - bh) // 2, bw, bh)
    return mark.embed((bw - mark.width) // 2, (bh - mark.height) // 2, bw, bh, extend="background", background=[0] * 4)


def place(base_width: int, base_height: int, mark_width: int, mark_height: int, opts: MarkOptions) -> tuple[int, int]:
    """Top-left corner of the mark on the base image for `mark-align`/`mark-pad`, or `mark-x`/`mark-y`."""
    x, y = aligned((base_width, base_height), (mark_width, mark_height), opts.align, opts.pad, ("right", "bottom"))
    # A mark larger than the image, placed at an edge, starts at the image's left or top edge
    # (a centred one overhangs both sides alike).
    x = x if "center" in opts.align else max(0, x)
    y = y if "middle" in opts.align else max(0, y)
    return (x if opts.x is None else opts.x), (y if opts.y is None else opts.y)


def _tiled(mark: pyvips.Image, width: int, height: int, gap: int) -> pyvips.Image:
    """The mark repeated over a width x height transparent layer, `gap` pixels apart."""
    cell = mark.embed(0, 0, mark.width + gap, mark.height + gap, extend="background", background=[0] * 4)
    across = -(-width // cell.width)
    down = -(-height // cell.height)
    return cell.replicate(across, down).crop(0, 0, width, height)


def composite(image: pyvips.Image, mark: pyvips.Image, opts: MarkOptions) -> pyvips.Image:
    had_alpha = image.hasalpha()
    base = image if had_alpha else image.bandjoin(255)
    if opts.tile:
        layer = _tiled(mark, image.width, image.height, opts.pad)
        out = base.composite2(layer.copy(interpretation="srgb"), "over")
    else:
        x, y = place(image.width, image.height, mark.width, mark.height, opts)
        out = base.composite2(mark, "over", x=x, y=y)
    out = out.cast("uchar")
    return out if had_alpha else out.extract_band(0, n=3)
