"""Two steps where Pillow's bundled codecs do libvips' work for less CPU, with the same result.

The `pyvips-binary` wheel's libvips decodes JPEG with mozjpeg and encodes WebP with its own
build of libwebp; Pillow's wheel bundles libjpeg-turbo 3.x and libwebp. Measured on
`../shared/corpus`, interleaved, in CPU time (see README, Speed):

- a JPEG decoded at 1/2, 1/4 or 1/8 scale (shrink-on-load) costs 0.68-0.90 of libvips' time
  on progressive files and 0.94 on baseline ones, with the same pixels: both run libjpeg's
  scaled IDCT, so the images are equal wherever both have pixels (libjpeg rounds a partial
  block up, libvips drops it: the extra row or column is cropped off here); a progressive
  one at 1/8 first loses the scans that scale never reads (`jpegscan.py`), for 0.2-0.6 of
  that again;
- a lossy WebP costs 0.80-0.83 of libvips' time, and the file is the same, byte for byte
  (same libwebp settings: quality, method = effort, alpha quality 100, no metadata).

Everything else stays in libvips, and so does every case these two do not cover exactly:
CMYK or 16-bit JPEGs, full-size decodes (libvips streams them; Pillow would hold the whole
image), lossless WebP, WebP with a profile or EXIF kept (`cs`, `dpi`), animations. A JPEG
Pillow cannot decode is handed to libvips, whose verdict stands (a truncated file is still a 422).

Limits hold as before: the source has passed the probe's limits; the decode runs inside the
render's memory reservation; it reads its input through the render's guard, so a killed render
stops within one 64 KiB read; and only outputs up to `WEBP_MAX_PIXELS` are encoded here (a
Pillow encode cannot be killed: at this size it takes at most a few hundred ms, while
libvips' webpsave, which honours the kill flag, takes the larger ones).
"""

from __future__ import annotations

import io

import pyvips
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from . import jpegscan
from .guard import RenderGuard

WEBP_MAX_PIXELS = 1 << 20
"""The largest output (pixels) encoded as WebP by Pillow; larger ones by libvips (killable)."""

_JPEG_SHRINKS = frozenset({2, 4, 8})
_MODES = {"L": (1, "b-w"), "RGB": (3, "srgb")}
_WEBP_MODES = {3: "RGB", 4: "RGBA"}
_OWN_FIELDS = frozenset(
    {
        "width",
        "height",
        "bands",
        "format",
        "coding",
        "interpretation",
        "xoffset",
        "yoffset",
        "xres",
        "yres",
        "filename",
        "vips-loader",
    }
)
"""Fields every libvips image has of its own; the rest of the header's are metadata to carry over."""
_FAILURES = (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError, Image.DecompressionBombError)


class _GuardedReader(io.BytesIO):
    """The source bytes (shared, not copied), checking the render's kill switch before each read."""

    def __init__(self, data: bytes, guard: RenderGuard) -> None:
        super().__init__(data)
        self._guard = guard

    def read(self, size: int | None = -1) -> bytes:
        self._guard.check()
        return super().read(size)


def decode_jpeg(data: bytes, header: pyvips.Image, shrink: int, guard: RenderGuard) -> pyvips.Image | None:
    """The JPEG decoded at 1/`shrink` by libjpeg-turbo, as libvips' `jpegload(shrink=)` would
    give it (same size, pixels and metadata); None where this path does not apply or Pillow
    refuses the file (the caller then decodes with libvips)."""
    if shrink not in _JPEG_SHRINKS or header.format != "uchar" or header.bands not in (1, 3):
        return None
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and header.width * header.height > limit:
        return None  # Pillow would warn or refuse; the probe has applied our own limit
    width, height = header.width // shrink, header.height // shrink
    if not width or not height:
        return None
    if shrink == 8 and header.get_typeof("jpeg-multiscan") and header.get("jpeg-multiscan"):
        data = jpegscan.for_eighth_scale(data) or data  # the same pixels, 1.7-5x faster (jpegscan.py)
    try:
        with Image.open(_GuardedReader(data, guard), formats=("JPEG",)) as source:
            if not isinstance(source, JpegImagePlugin.JpegImageFile) or source.mode not in _MODES:
                return None
            source.draft(None, (width, height))
            if source.size != (-(-header.width // shrink), -(-header.height // shrink)):
                return None  # not the scale asked for
            source.load()
            bands, interpretation = _MODES[source.mode]
            pixels, size = source.tobytes(), source.size
    except _FAILURES:
        return None
    image = pyvips.Image.new_from_memory(pixels, size[0], size[1], bands, "uchar")
    if size != (width, height):
        image = image.crop(0, 0, width, height)
    image = image.copy(interpretation=interpretation, xres=header.xres, yres=header.yres)
    for name in header.get_fields():
        if name not in _OWN_FIELDS:
            image.set_type(header.get_typeof(name), name, header.get(name))
    return image


def can_encode_webp(image: pyvips.Image) -> bool:
    """Whether `encode_webp` gives exactly libvips' lossy, metadata-free WebP of `image`."""
    return (
        image.format == "uchar"
        and image.bands in _WEBP_MODES
        and image.interpretation == "srgb"
        and image.width * image.height <= WEBP_MAX_PIXELS
        and not image.get_typeof("page-height")
    )


def encode_webp(image: pyvips.Image, quality: int, effort: int) -> bytes:
    """libvips' `webpsave_buffer(Q=quality, effort=effort, keep="none")`, encoded by Pillow's libwebp.

    The pixels are computed by libvips first (`write_to_memory`, which honours the kill flag)."""
    mode = _WEBP_MODES[image.bands]
    pixels = image.write_to_memory()
    out = io.BytesIO()
    Image.frombuffer(mode, (image.width, image.height), pixels, "raw", mode, 0, 1).save(
        out, "WEBP", quality=quality, method=effort
    )
    return out.getvalue()
