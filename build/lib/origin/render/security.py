"""Lock libvips down before the first request: only the loaders we accept may run.

`block_untrusted_set` alone leaves TIFF (and others libvips deems trusted) reachable, so
every loader is blocked and the five we accept are unblocked by class. The check that
follows loads an SVG and a TIFF: if either decodes, the service refuses to start.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import pyvips

ALLOWED_LOADERS = (
    "VipsForeignLoadJpeg",
    "VipsForeignLoadPng",
    "VipsForeignLoadWebp",
    "VipsForeignLoadNsgif",
    "VipsForeignLoadHeif",
)
MIN_VERSION = (8, 13)
_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'


class UnsafeLibvips(RuntimeError):
    """libvips cannot be locked down; serving untrusted images would be unsafe."""


def harden(operation_cache: int = 0) -> None:
    """Block untrusted loaders, bound libvips' caches and the allocator's arenas; verify.

    The operation cache is off by default: each request's image is new, so caching
    operations only holds memory (it is a main cause of 1 GiB RSS in libvips servers).
    """
    if (pyvips.version(0), pyvips.version(1)) < MIN_VERSION:
        raise UnsafeLibvips(f"libvips {pyvips.version(0)}.{pyvips.version(1)} is older than 8.13")
    pyvips.operation_block_set("VipsForeignLoad", True)
    for name in ALLOWED_LOADERS:
        pyvips.operation_block_set(name, False)
    pyvips.cache_set_max(operation_cache)
    pyvips.cache_set_max_mem(0 if operation_cache == 0 else 64 * 1024 * 1024)
    _limit_malloc_arenas()
    _verify_blocked()


def _verify_blocked() -> None:
    tiff = pyvips.Image.black(2, 2).tiffsave_buffer()
    for name, data in (("SVG", _SVG), ("TIFF", tiff)):
        try:
            pyvips.Image.new_from_buffer(data, "").avg()
        except pyvips.Error:
            continue
        raise UnsafeLibvips(f"the {name} loader is still reachable after blocking")


def _limit_malloc_arenas() -> None:
    """glibc gives each render thread its own arena; two keep RSS flat under load."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return
    try:
        libc = ctypes.CDLL(libc_name)
        m_arena_max = -8
        libc.mallopt(m_arena_max, 2)
    except (OSError, AttributeError):
        return
