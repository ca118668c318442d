"""Test fixtures made with pyvips at test time, so the suite needs no binary files.

`quadrants` is the workhorse: four flat colours, so a crop, a flip or a watermark
can be checked by reading a pixel.
"""

from __future__ import annotations

import pyvips

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def quadrants(width: int, height: int) -> pyvips.Image:
    """Top-left red, top-right green, bottom-left blue, bottom-right white."""
    hw, hh = width // 2, height // 2
    top = _flat(hw, hh, RED).join(_flat(width - hw, hh, GREEN), "horizontal")
    bottom = _flat(hw, height - hh, BLUE).join(_flat(width - hw, height - hh, WHITE), "horizontal")
    return top.join(bottom, "vertical").copy(interpretation="srgb")


def _flat(width: int, height: int, colour: tuple[int, ...]) -> pyvips.Image:
    return (pyvips.Image.black(width, height) + list(colour)).cast("uchar").copy(interpretation="srgb")


def flat(width: int, height: int, colour: tuple[int, ...] = (128, 128, 128)) -> pyvips.Image:
    return _flat(width, height, colour)


def encode(image: pyvips.Image, suffix: str = ".png", **options: object) -> bytes:
    return image.write_to_buffer(suffix, **options)


def jpeg(width: int = 64, height: int = 48, **options: object) -> bytes:
    return encode(quadrants(width, height), ".jpg", Q=95, **options)


def png(width: int = 64, height: int = 48) -> bytes:
    return encode(quadrants(width, height), ".png")


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def pixel(data_or_image: bytes | pyvips.Image, x: int, y: int) -> tuple[int, ...]:
    image = decode(data_or_image) if isinstance(data_or_image, bytes) else data_or_image
    return tuple(int(round(v)) for v in image.getpoint(x, y))


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 24) -> bool:
    """Colour equality within lossy-codec tolerance, on the first len(expected) bands."""
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))


def magic(data: bytes) -> str:
    """The format named by the magic bytes, independent of the code under test."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"GIF8"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "avif"
    return "unknown"


def textured(width: int, height: int, bands: int = 3) -> pyvips.Image:
    """Quadrants with strong per-pixel noise: every pixel differs from its neighbours."""
    base = quadrants(width, height)
    noise = pyvips.Image.gaussnoise(width, height, sigma=40, mean=0)
    image = (base + noise).cast("uchar").copy(interpretation="srgb")
    if bands == 1:
        return image.colourspace("b-w")
    if bands == 4:
        alpha = (pyvips.Image.gaussnoise(width, height, sigma=60, mean=128)).cast("uchar")
        return image.bandjoin(alpha)
    return image


def max_difference(a: pyvips.Image, b: pyvips.Image) -> float:
    assert (a.width, a.height, a.bands) == (b.width, b.height, b.bands)
    return (a.cast("int") - b.cast("int")).abs().max()
