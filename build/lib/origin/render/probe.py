"""Read a source's header and enforce the limits before a single pixel is decoded.

libvips loads lazily: opening a buffer parses only the header, so a 5 KB file that
declares 64250 x 64250 pixels is refused here in microseconds and with flat memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from ..errors import CorruptImage, ImageTooLarge, TooManyFrames
from ..formats import sniff
from .config import RenderConfig

_SWAPS_AXES = frozenset({5, 6, 7, 8})
_METADATA_FIELDS = ("exif-data", "xmp-data", "iptc-data", "icc-profile-data")
_RENDERED_SPACES = frozenset({"srgb", "b-w"})
STRICT_LOAD = "fail_on=truncated"
"""Load options for `thumbnail_buffer`, which takes them only as a string: a `fail_on=`
keyword is silently ignored there and a truncated file decodes half grey."""


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the header says, with width and height as displayed (EXIF orientation applied)."""

    format: str
    width: int
    height: int
    pages: int
    has_alpha: bool
    orientation: int
    progressive: bool = False
    """A progressive JPEG: decoding it holds every coefficient, whatever the shrink."""
    has_metadata: bool = False
    """EXIF, XMP, IPTC or an ICC profile present: the source must not be served in place of a
    stripped render (a profile, P3 say, would also mean colours other than the render's sRGB)."""
    plain_colour: bool = True
    """8-bit sRGB or grey, as a render outputs; a CMYK or 16-bit source is never served as is."""

    @property
    def animated(self) -> bool:
        return self.pages > 1


def open_header(data: bytes, **options: object) -> pyvips.Image:
    """Open `data` lazily (header only); a header libvips cannot parse is a corrupt image."""
    try:
        return pyvips.Image.new_from_buffer(data, "", **options)
    except pyvips.Error:
        raise CorruptImage("the image header cannot be read") from None


def probe(data: bytes, config: RenderConfig) -> SourceInfo:
    """Sniff the format (415), read the header (422 if unreadable) and apply the limits (422)."""
    fmt = sniff(data)
    image = open_header(data)
    width, height = image.width, image.height
    pages = image.get("n-pages") if image.get_typeof("n-pages") else 1
    orientation = image.get("orientation") if image.get_typeof("orientation") else 1
    if not 1 <= orientation <= 8:
        orientation = 1
    if width * height > config.max_source_pixels:
        megapixels = config.max_source_pixels / 1_000_000
        raise ImageTooLarge(f"the source exceeds {megapixels:g} megapixels ({width}x{height})")
    if max(width, height) > config.max_source_side:
        raise ImageTooLarge(f"the source exceeds {config.max_source_side} px a side ({width}x{height})")
    if orientation in _SWAPS_AXES:
        width, height = height, width
    return SourceInfo(
        format=fmt,
        width=width,
        height=height,
        pages=pages,
        has_alpha=bool(image.hasalpha()),
        orientation=orientation,
        progressive=bool(image.get("jpeg-multiscan")) if image.get_typeof("jpeg-multiscan") else False,
        has_metadata=any(image.get_typeof(field) for field in _METADATA_FIELDS),
        plain_colour=image.format == "uchar" and image.interpretation in _RENDERED_SPACES,
    )


def check_frames(info: SourceInfo, config: RenderConfig) -> None:
    """Limits that apply only when every frame of an animation will be decoded."""
    if info.pages > config.max_frames:
        raise TooManyFrames(f"the animation has {info.pages} frames; the limit is {config.max_frames}")
    if info.width * info.height * info.pages > config.max_animation_pixels:
        raise TooManyFrames("the animation's frames exceed the total pixel limit")
