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
from .probe import STRICT_LOAD, probe


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


def _box_size(
    natural: tuple[int, int], w: float | None, h: float | None, fit: str, base: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """The size the mark is decoded at for `mark-w`/`mark-h` and `mark-fit`, and the box
    it is cut (crop) or padded (fill) to, if any."""
    nw, nh = natural
    bw = None if w is None else max(1, round(w * base[0] if w <= 1 else w))
    bh = None if h is None else max(1, round(h * base[1] if h <= 1 else h))
    if bw is None or bh is None:
        k = bw / nw if bw is not None else bh / nh if bh is not None else 1.0
        return (max(1, round(nw * k)), max(1, round(nh * k))), None
    if fit == "scale":
        return (bw, bh), None
    if fit == "crop":
        k = max(bw / nw, bh / nh)
        return (max(bw, round(nw * k)), max(bh, round(nh * k))), (bw, bh)
    k = min(bw / nw, bh / nh)
    if fit == "max":
        k = min(k, 1.0)
    size = (max(1, round(nw * k)), max(1, round(nh * k)))
    return size, ((bw, bh) if fit == "fill" else None)


def load_mark(data: bytes, base_width: int, base_height: int, opts: MarkOptions, config: RenderConfig) -> pyvips.Image:
    """Decode the mark at the size it will be drawn, in sRGB with an alpha band."""
    info = probe(data, config)
    box = None
    if opts.w is not None or opts.h is not None:
        (width, height), box = _box_size((info.width, info.height), opts.w, opts.h, opts.fit, (base_width, base_height))
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
    # In memory: a mark is at most the base's size, and tiling or rotating reads it out of order.
    mark = pyvips.Image.thumbnail_buffer(data, width, height=height, size="force", option_string=STRICT_LOAD)
    mark = mark.copy_memory()
    mark = mark.colourspace("srgb") if mark.interpretation != "srgb" else mark
    if not mark.hasalpha():
        mark = mark.bandjoin(255)
    if box is not None:
        mark = _to_box(mark, box, opts.fit)
        if mark.width > limit_w or mark.height > limit_h:
            k = min(limit_w / mark.width, limit_h / mark.height)
            mark = mark.resize(k)
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
