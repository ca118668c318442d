"""Is an upload safe to store? Checked in the render pool, before a byte reaches storage.

A stored original is served byte for byte, so whatever is accepted here is what browsers
and CDNs will see: only the five image formats, with no HTML or script markup anywhere
in them, within the source limits, and decodable from the first byte to the last. The
full decode is what makes a truncated file a 422 at upload rather than a half-grey
image on the first render.
"""

from __future__ import annotations

import re

import pyvips

from ..containers import trailing_bytes
from ..errors import CorruptImage, UnsupportedMedia
from ..formats import sniff
from .budget import estimate
from .config import RenderConfig
from .guard import RenderGuard
from .probe import SourceInfo, check_frames, probe

MARKUP = re.compile(rb"<(?:script|html|body|iframe|svg|!doctype)", re.IGNORECASE)
"""Tags that make a file a polyglot: valid as an image, yet HTML to a sniffing browser
(`GIF89a<script>...`). What follows an image's end is refused by structure
(containers.py), whatever it says; this scan is the second line for what lies inside
the structure (a JPEG comment, a PNG text chunk, GIF's header room), where the served
`Content-Type`, `nosniff` and `CSP: sandbox` are what keep a browser from running it.
Image data holding one of these by chance is vanishingly rare (compressed bytes)."""


_JPEG_CHECK_SHRINK = 8
_NAMES = {"jpg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WebP", "avif": "AVIF"}


def validate(data: bytes, config: RenderConfig, guard: RenderGuard) -> SourceInfo:
    """Sniff (415), refuse bytes after the image's end and markup (415), read the header within
    the limits (422), decode it all (422).

    Called through the render pool (`pool.run(validate, data, config)`): the scan and the
    decode are CPU work that must neither block the event loop nor escape the deadline.
    """
    fmt = sniff(data)
    if extra := trailing_bytes(data, fmt):
        raise UnsupportedMedia(
            f"{extra} byte(s) follow the end of the {_NAMES[fmt]} image; nothing may follow an image's own "
            "end (an image/HTML polyglot is refused whatever it holds)"
        )
    if MARKUP.search(data):
        raise UnsupportedMedia("the file contains HTML or script markup (an image/HTML polyglot)")
    info = probe(data, config)
    every_frame = config.animation and info.animated
    if every_frame:
        check_frames(info, config)
    # Sequential: the pixels stream through `avg` instead of being held whole. A JPEG is
    # decoded at 1/8 scale: every entropy-coded byte is still read (so truncation and
    # corruption still fail), but the inverse DCT, most of a decode's cost, is skipped.
    options: dict[str, object] = {"fail_on": "truncated", "access": "sequential"}
    shrink = _JPEG_CHECK_SHRINK if info.format == "jpg" else 1
    if shrink > 1:
        options["shrink"] = shrink
    if every_frame:
        options["n"] = -1
    try:
        with guard.reserve(estimate(info, len(data), shrink) * (info.pages if every_frame else 1)):
            guard.check()
            image = guard.track(pyvips.Image.new_from_buffer(data, "", **options))
            image.avg()  # the cheapest operation that makes libvips decode every pixel
    except pyvips.Error:
        guard.check()
        raise CorruptImage("the image data is corrupt or truncated") from None
    return info
