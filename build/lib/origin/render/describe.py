"""`fm=json`: what a client needs to lay an image out before it loads it."""

from __future__ import annotations

import json
import struct

import pyvips

from ..errors import CorruptImage
from .config import RenderConfig
from .guard import RenderGuard
from .probe import STRICT_LOAD, probe

_BINS = 8


def describe(data: bytes, config: RenderConfig, guard: RenderGuard) -> bytes:
    """JSON with width, height (as displayed), format, bytes, alpha, frames and dominant colour."""
    info = probe(data, config)
    try:
        guard.check()
        thumb = pyvips.Image.thumbnail_buffer(data, 64, option_string=STRICT_LOAD)
        colour = dominant_colour(guard.track(thumb))
    except pyvips.Error:
        guard.check()
        raise CorruptImage("the image data is corrupt or truncated") from None
    body = {
        "width": info.width,
        "height": info.height,
        "format": info.format,
        "bytes": len(data),
        "has_alpha": info.has_alpha,
        "frames": info.pages,
        "dominant_color": colour,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def dominant_colour(thumb: pyvips.Image) -> str:
    """The centre of the fullest cell of an 8x8x8 RGB histogram, as #rrggbb."""
    if thumb.interpretation != "srgb":
        thumb = thumb.colourspace("srgb")
    if thumb.hasalpha():
        thumb = thumb.flatten(background=[255, 255, 255])
    hist = thumb.cast("uchar").hist_find_ndim(bins=_BINS)
    counts = struct.unpack(f"{_BINS**3}I", hist.write_to_memory())
    best = max(range(len(counts)), key=counts.__getitem__)
    # Layout: x = red bin, y = green bin, band = blue bin.
    blue, rest = best % _BINS, best // _BINS
    red, green = rest % _BINS, rest // _BINS
    step = 256 // _BINS
    return "#" + "".join(f"{c * step + step // 2:02x}" for c in (red, green, blue))
