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
MMAP_THRESHOLD = 32 * 1024 * 1024
"""glibc's M_MMAP_THRESHOLD: larger blocks are mapped (and unmapped on free) one by one."""
TRIM_THRESHOLD = 256 * 1024 * 1024
"""glibc's M_TRIM_THRESHOLD: free memory past this at a heap's top is handed back at once."""
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
    _tune_malloc()
    _verify_blocked()


def _verify_blocked() -> None:
    tiff = pyvips.Image.black(2, 2).tiffsave_buffer()
    for name, data in (("SVG", _SVG), ("TIFF", tiff)):
        try:
            pyvips.Image.new_from_buffer(data, "").avg()
        except pyvips.Error:
            continue
        raise UnsafeLibvips(f"the {name} loader is still reachable after blocking")


def _tune_malloc() -> None:
    """glibc gives each render thread its own arena; two keep RSS flat under load.

    The thresholds are fixed too: by default glibc hands the top of a heap back to the system
    whenever more than twice the largest freed block is free there, which after a render of a
    12 MP progressive JPEG (three DCT coefficient arrays of 12-24 MiB) is every time, and the
    next render pays ~12k page faults (85 -> 110 ms CPU for L-jpg-sunset). Blocks up to 32 MiB
    (glibc's maximum) come from the heap, and freed memory is returned by the budget's and the
    idle pool's `malloc_trim`, which already decide when it is worth it."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return
    try:
        libc = ctypes.CDLL(libc_name)
        m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
        libc.mallopt(m_arena_max, 2)
        libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD)
        libc.mallopt(m_trim_threshold, TRIM_THRESHOLD)
    except (OSError, AttributeError):
        return
