"""ICC-tagged RGB to sRGB with a LittleCMS transform built once per profile, not once per render.

libvips' `icc_transform` builds a new LittleCMS transform on every call, and building one
costs more than using it: for an Adobe RGB photo resized to 500 px, ~2.5 ms to build and
~1.5 ms to convert the 167k pixels (measured on `../shared/corpus/S-jpg-rocket.jpg`, a
sixth of that render). Photos from phones (Display P3) and cameras (Adobe RGB) carry a
handful of distinct profiles, so the transforms are kept: an LRU of `CACHED_PROFILES`,
keyed by the profile's bytes.

The conversion is libvips' own: the same LittleCMS (the copy Pillow bundles, or the
system's), the same perceptual intent, into the sRGB profile libvips itself converts to,
so the pixels are libvips' (tests/origin/render/test_colour.py). Only the common case is
taken here: 8-bit RGB or RGBA with an RGB profile, up to `MAX_PIXELS` (the pixels are
computed into memory first, which honours the render's kill flag; a larger image streams
through libvips). Anything else, or no LittleCMS to load, answers None and the caller
converts with libvips as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from pathlib import Path

import PIL
import pyvips

MAX_PIXELS = 1 << 22
"""The largest image converted here (4 MP: 16 MiB of RGBA held at once); larger ones stream."""
CACHED_PROFILES = 16
"""Transforms kept (each ~200 KiB: LittleCMS' 8-bit tables); a new profile past these evicts the oldest."""
MAX_PROFILE_BYTES = 1 << 20
"""Profiles larger than this (a JPEG may carry 16 MB) are libvips' to convert: the cache keys on
the profile's bytes and must not hold 16 of those outside any render's memory budget."""

_RGB_8 = (4 << 16) | (3 << 3) | 1
"""LittleCMS' TYPE_RGB_8: PT_RGB colour space, 3 channels, 1 byte each."""
_RGBA_8 = _RGB_8 | (1 << 7)
"""TYPE_RGBA_8: one extra (alpha) channel after the three."""
_PERCEPTUAL = 0
_USED_AS_INPUT = 0
_NOCACHE = 0x0040
"""cmsFLAGS_NOCACHE: no one-pixel cache inside the transform, so threads can share it."""
_COPY_ALPHA = 0x04000000
"""cmsFLAGS_COPY_ALPHA: the extra channel is copied through (LittleCMS 2.8+)."""
_FORMATS = {3: _RGB_8, 4: _RGBA_8}


class _Transform:
    """One LittleCMS transform; deleted when the last render using it lets go (never under one)."""

    def __init__(self, lcms: ctypes.CDLL, handle: int) -> None:
        self._lcms, self._handle = lcms, handle

    def apply(self, pixels: ctypes.Array[ctypes.c_char], count: int) -> None:
        """Convert `count` pixels in place (LittleCMS allows the input as the output)."""
        self._lcms.cmsDoTransform(self._handle, pixels, pixels, count)

    def __del__(self) -> None:
        self._lcms.cmsDeleteTransform(self._handle)


def _library_candidates() -> list[str]:
    """Pillow's bundled LittleCMS first (the wheel's, so every install has it), then the system's."""
    package = Path(PIL.__file__).parent
    bundled = sorted(package.parent.glob("pillow.libs/liblcms2*")) + sorted(package.glob(".dylibs/liblcms2*"))
    system = ctypes.util.find_library("lcms2")
    return [str(path) for path in bundled] + ([system] if system else [])


@functools.cache
def _lcms() -> ctypes.CDLL | None:
    """LittleCMS 2.8+ with its signatures declared, or None where none can be loaded."""
    for name in _library_candidates():
        try:
            lib = ctypes.CDLL(name)
            lib.cmsGetEncodedCMMversion.restype = ctypes.c_int
            if lib.cmsGetEncodedCMMversion() < 2080:
                continue
        except (OSError, AttributeError):
            continue
        lib.cmsOpenProfileFromMem.restype = ctypes.c_void_p
        lib.cmsOpenProfileFromMem.argtypes = [ctypes.c_char_p, ctypes.c_uint32]
        lib.cmsCloseProfile.argtypes = [ctypes.c_void_p]
        lib.cmsCreateTransform.restype = ctypes.c_void_p
        lib.cmsCreateTransform.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_uint32,
            ctypes.c_uint32,
        ]
        lib.cmsDoTransform.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32]
        lib.cmsDeleteTransform.argtypes = [ctypes.c_void_p]
        lib.cmsIsIntentSupported.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32]
        return lib
    return None


@functools.cache
def srgb_profile() -> bytes:
    """The sRGB profile libvips converts to (`icc_transform("srgb")`), as bytes: the target of
    every conversion here, and the profile `cs=srgb` embeds."""
    lab = pyvips.Image.black(1, 1, bands=3).copy(interpretation="lab")
    return bytes(lab.icc_export(output_profile="srgb").get("icc-profile-data"))


@functools.lru_cache(maxsize=CACHED_PROFILES)
def _transform(profile: bytes, bands: int) -> _Transform | None:
    """The perceptual transform from `profile` to sRGB for `bands`-band 8-bit pixels; None where
    LittleCMS refuses the profile (corrupt, or not RGB after all)."""
    lcms = _lcms()
    if lcms is None:
        return None
    srgb = srgb_profile()
    source = lcms.cmsOpenProfileFromMem(profile, len(profile))
    if not source:
        return None
    if not lcms.cmsIsIntentSupported(source, _PERCEPTUAL, _USED_AS_INPUT):
        lcms.cmsCloseProfile(source)
        return None  # libvips then falls back to its own choice; so must this path
    target = lcms.cmsOpenProfileFromMem(srgb, len(srgb))
    try:
        fmt = _FORMATS[bands]
        flags = _NOCACHE | (_COPY_ALPHA if bands == 4 else 0)
        handle = lcms.cmsCreateTransform(source, fmt, target, fmt, _PERCEPTUAL, flags)
    finally:
        lcms.cmsCloseProfile(source)
        lcms.cmsCloseProfile(target)
    return _Transform(lcms, handle) if handle else None


def to_srgb(image: pyvips.Image) -> pyvips.Image | None:
    """`image` (8-bit RGB or RGBA, with an embedded RGB profile) converted to sRGB as libvips'
    `icc_transform("srgb", embedded=True, intent="perceptual")` would; None where this path
    does not apply (the caller then asks libvips): another kind of image, an outsized profile, or
    one without the perceptual intent LittleCMS would need."""
    if image.format != "uchar" or image.bands not in _FORMATS or image.interpretation != "srgb":
        return None
    if image.width * image.height > MAX_PIXELS or not image.get_typeof("icc-profile-data"):
        return None
    profile = bytes(image.get("icc-profile-data"))
    if (
        len(profile) > MAX_PROFILE_BYTES or profile[16:20] != b"RGB "
    ):  # the header's data colour space: a CMYK or grey profile is libvips' case
        return None
    transform = _transform(profile, image.bands)
    if transform is None:
        return None
    pixels = image.write_to_memory()
    transform.apply((ctypes.c_char * len(pixels)).from_buffer(pixels), image.width * image.height)
    out = pyvips.Image.new_from_memory(pixels, image.width, image.height, image.bands, "uchar")
    return out.copy(interpretation="srgb", xres=image.xres, yres=image.yres)
