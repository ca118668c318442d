"""Read a source's header and enforce the limits before a single pixel is decoded.

libvips loads lazily: opening a buffer parses only the header, so a 5 KB file that
declares 64250 x 64250 pixels is refused here in microseconds and with flat memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from ..errors import AnimationTooCostly, CorruptImage, ImageTooLarge, TooManyFrames
from ..formats import sniff
from .config import RenderConfig

_SWAPS_AXES = frozenset({5, 6, 7, 8})
_METADATA_FIELDS = ("exif-data", "xmp-data", "iptc-data", "icc-profile-data")
_RENDERED_SPACES = frozenset({"srgb", "b-w"})
_CHROMA_SAMPLES = {"4:4:4": 3.0, "4:2:2": 2.0, "4:4:0": 2.0, "4:2:0": 1.5, "4:1:1": 1.5}
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
    samples: float = 0.0
    """JPEG: DCT samples per pixel over all components (1 grey, 1.5 colour 4:2:0, 3 colour 4:4:4,
    4 CMYK); what a progressive decode's coefficient buffers scale with. 0 for other formats."""

    @property
    def animated(self) -> bool:
        return self.pages > 1


def load(data: bytes, **options: object) -> pyvips.Image:
    """`data` opened lazily by libvips, reading the bytes where they are.

    `new_from_buffer` would first copy them into a libvips blob: a second copy of the source
    for as long as the image lives (13 MB of a 13 MB PNG's render), and 1-2 ms per open.
    The image refers to `data`, which must outlive it (pyvips keeps the reference).
    """
    return pyvips.Image.new_from_source(pyvips.Source.new_from_memory(data), "", **options)


def open_header(data: bytes, **options: object) -> pyvips.Image:
    """Open `data` lazily (header only); a header libvips cannot parse is a corrupt image."""
    try:
        return load(data, **options)
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
        samples=_jpeg_samples(image) if fmt == "jpg" else 0.0,
        plain_colour=image.format == "uchar" and image.interpretation in _RENDERED_SPACES,
    )


def _jpeg_samples(image: pyvips.Image) -> float:
    """Samples per pixel from the header's chroma subsampling; unknown layouts count every band in full."""
    bands = int(image.bands)
    if bands != 3:
        return float(bands)
    subsample = image.get("jpeg-chroma-subsample") if image.get_typeof("jpeg-chroma-subsample") else ""
    return _CHROMA_SAMPLES.get(subsample, 3.0)


def check_frames(info: SourceInfo, config: RenderConfig) -> None:
    """Limits that apply only when every frame of an animation will be decoded."""
    if info.pages > config.max_frames:
        raise TooManyFrames(f"the animation has {info.pages} frames; the limit is {config.max_frames}")
    if info.width * info.height * info.pages > config.max_animation_pixels:
        raise TooManyFrames("the animation's frames exceed the total pixel limit")


ENCODE_COST = {"webp": 1, "gif": 2}
"""CPU per output pixel of each animated encoder, relative to WebP's: GIF's palette search costs
about twice WebP's encode (measured ~80 vs ~36 ms of CPU per megapixel on 100-frame renders)."""


def check_animation_cost(info: SourceInfo, output: tuple[int, int], fmt: str, config: RenderConfig) -> None:
    """Refuse, before any frame is decoded, an animation whose encode would cost more than the limit:
    frames x output pixels x the encoder's cost. A 2 KB GIF of 100 frames of 1000x1000 asked for at
    500 px as GIF is 50 M, minutes of CPU for a handful of distinct widths."""
    width, height = output
    work = info.pages * width * height * ENCODE_COST.get(fmt, 1)
    if work > config.max_animation_encode_pixels:
        raise AnimationTooCostly(
            f"encoding {info.pages} frames of {width}x{height} as {fmt} costs {work / 1e6:.1f} M pixel-units"
            f" (frames x width x height x {ENCODE_COST.get(fmt, 1)} for {fmt}); the limit"
            f" max_animation_encode_pixels is {config.max_animation_encode_pixels / 1e6:g} M"
        )
