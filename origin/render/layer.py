"""What the watermark and the blend image share: another image of our storage, sized into a
box per imgix's fit modes (`mark-w/h` + `mark-fit`, `blend-w/h` + `blend-fit`) and decoded
as an sRGB + alpha layer at that size."""

from __future__ import annotations

import pyvips

from .probe import STRICT_LOAD


def px(value: float | None, base: int) -> int | None:
    """A box side in pixels: a share of the base image in (0, 1], or pixels."""
    return None if value is None else max(1, round(value * base if value <= 1 else value))


def fitted(natural: tuple[int, int], box: tuple[int | None, int | None], fit: str) -> tuple[int, int]:
    """The size a `natural`-sized image is decoded at for a box (either side may be unset) and a
    fit: one side given scales to it; `scale` is the box; `crop` covers it (the caller then cuts
    the box); any other fit (clip, and what the caller pads or extends) fits inside it, and
    `max` never enlarges."""
    (nw, nh), (bw, bh) = natural, box
    if bw is None and bh is None:
        return natural
    if bw is None or bh is None:
        k = bw / nw if bw is not None else bh / nh if bh is not None else 1.0
    elif fit == "scale":
        return bw, bh
    elif fit == "crop":
        k = max(bw / nw, bh / nh)
        return max(bw, round(nw * k)), max(bh, round(nh * k))
    else:
        k = min(bw / nw, bh / nh)
        if fit == "max":
            k = min(k, 1.0)
    return max(1, round(nw * k)), max(1, round(nh * k))


def decode(data: bytes, width: int, height: int) -> pyvips.Image:
    """`data` decoded at exactly width x height, in sRGB with an alpha band."""
    layer = pyvips.Image.thumbnail_buffer(data, width, height=height, size="force", option_string=STRICT_LOAD)
    layer = layer.colourspace("srgb") if layer.interpretation != "srgb" else layer
    return layer if layer.hasalpha() else layer.bandjoin(255)
