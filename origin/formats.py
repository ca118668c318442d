"""Image formats: sniffing from bytes, MIME types, Accept negotiation, output choice (pure).

The stored name or declared content type of an object is never trusted: only the
magic bytes decide what a source is, and only the formats below are ever decoded.
"""

from __future__ import annotations

import enum
import functools

from .errors import UnsupportedMedia

MIME = {
    "jpg": "image/jpeg",
    "pjpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "gif": "image/gif",
    "json": "application/json",
    "png8": "image/png",
    "png32": "image/png",
    "blurhash": "text/plain",
    "css": "text/css",
}
OUTPUT_FORMATS = ("jpg", "pjpg", "png", "webp", "avif", "gif", "json", "png8", "png32", "blurhash")
_AVIF_BRANDS = (b"avif", b"avis")


def sniff(data: bytes) -> str:
    """The source format from its magic bytes: jpg, png, webp, gif or avif; else 415."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and _has_avif_brand(data):
        return "avif"
    raise UnsupportedMedia("the object is not a JPEG, PNG, WebP, GIF or AVIF image")


def _has_avif_brand(data: bytes) -> bool:
    """AVIF is an ISO-BMFF file whose major or compatible brands include avif/avis."""
    size = int.from_bytes(data[:4], "big")
    if size < 16 or size > min(len(data), 4096):
        return False
    brands = [data[8:12]] + [data[i : i + 4] for i in range(16, size - 3, 4)]
    return any(brand in _AVIF_BRANDS for brand in brands)


class Accepts(enum.Enum):
    """What the client's Accept header allows, reduced to the only distinctions we act on."""

    AVIF = "avif"
    WEBP = "webp"
    LEGACY = "legacy"


@functools.lru_cache(maxsize=1024)
def negotiate(accept: str) -> Accepts:
    """The best modern format the Accept header names with a non-zero q-value."""
    allowed: set[str] = set()
    for item in accept[:4096].split(","):
        media, _, params = item.strip().partition(";")
        media = media.strip().lower()
        if media in ("image/avif", "image/webp") and not _zero_q(params):
            allowed.add(media)
    if "image/avif" in allowed:
        return Accepts.AVIF
    if "image/webp" in allowed:
        return Accepts.WEBP
    return Accepts.LEGACY


def _zero_q(params: str) -> bool:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value) <= 0
            except ValueError:
                return True
    return False


def output_format(fm: str | None, auto_format: bool, source: str, accepts: Accepts, alpha: bool) -> str:
    """Explicit `fm` wins; else `auto=format` picks AVIF, then WebP; else the source's own format.

    Without negotiation a WebP or AVIF source keeps its format (as imgix does); with
    negotiation and no modern format allowed, it falls back to PNG (alpha) or JPEG.
    """
    if fm:
        return fm
    if auto_format:
        if accepts is Accepts.AVIF:
            return "avif"
        if accepts is Accepts.WEBP:
            return "webp"
        if source in ("jpg", "png", "gif"):
            return source
        return "png" if alpha else "jpg"
    return source
