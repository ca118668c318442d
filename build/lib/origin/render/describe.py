"""`fm=json`: what a client needs to lay an image out before it loads it."""

from __future__ import annotations

import json
import struct

import pyvips

from ..errors import CorruptImage
from . import faces as face_detection
from .config import RenderConfig
from .guard import RenderGuard
from .probe import STRICT_LOAD, probe

_BINS = 8


def describe(data: bytes, config: RenderConfig, guard: RenderGuard, faces: bool = False) -> bytes:
    """JSON with width, height (as displayed), format, bytes, alpha, frames and dominant colour;
    with `faces=1`, the faces found (`x`, `y`, `width`, `height` in the displayed image's pixels,
    largest first)."""
    if faces:
        face_detection.require("faces=1")
    info = probe(data, config)
    try:
        guard.check()
        thumb = pyvips.Image.thumbnail_buffer(data, 64, option_string=STRICT_LOAD)
        colour = dominant_colour(guard.track(thumb))
        found = _faces(data, info.width, info.height, guard) if faces else None
    except pyvips.Error:
        guard.check()
        raise CorruptImage("the image data is corrupt or truncated") from None
    body: dict[str, object] = {
        "width": info.width,
        "height": info.height,
        "format": info.format,
        "bytes": len(data),
        "has_alpha": info.has_alpha,
        "frames": info.pages,
        "dominant_color": colour,
    }
    if found is not None:
        body["faces"] = found
    return json.dumps(body, separators=(",", ":")).encode()


def _faces(data: bytes, width: int, height: int, guard: RenderGuard) -> list[dict[str, int]]:
    """Faces on a copy the detector's size (oriented as displayed), mapped back to full size."""
    guard.check()
    side = face_detection.DETECT_SIDE
    small = pyvips.Image.thumbnail_buffer(data, side, height=side, option_string=STRICT_LOAD)
    fx, fy = width / small.width, height / small.height
    found = face_detection.detect(guard.track(small))
    return [{"x": f.x, "y": f.y, "width": f.w, "height": f.h} for f in (face.scaled(fx, fy) for face in found)]


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
