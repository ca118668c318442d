"""A memory budget shared by the render threads, so heavy decodes take turns.

Peak memory, not CPU, is where libvips servers lose: a 17 MP progressive JPEG with full
chroma holds ~100 MiB of DCT coefficients while it decodes, whatever the shrink. Each render reserves its
estimated cost before decoding; a render that would push the total past the limit
waits for others to finish (one alone always runs, however large). A large render that
ends while others still hold memory asks the allocator to hand freed memory back to the
system; the last one out does not (see `MemoryBudget.reserve`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .guard import RenderGuard
from .probe import SourceInfo

_TRIM_AFTER = 32 * 1024 * 1024
_WAIT_SLICE = 0.05


class MemoryBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, cost: int, guard: RenderGuard) -> Iterator[None]:
        """Hold `cost` bytes of the budget while the block runs; gives up if the render is killed."""
        cost = min(cost, self.limit)
        with self._cond:
            while self.used and self.used + cost > self.limit:
                guard.check()
                self._cond.wait(_WAIT_SLICE)
            self.used += cost
        try:
            yield
        finally:
            with self._cond:
                self.used -= cost
                others = self.used
                self._cond.notify_all()
            if cost >= _TRIM_AFTER and others:
                # Renders overlap: trim, so the arenas hold what the renders in flight hold.
                # Alone, keep the freed pages for the next render: at most one render's worth,
                # handed back by the pool's idle tidy within a second. Returning them each time
                # cost 14-30 ms of page faults per large progressive JPEG (10-13k faults of
                # 4 KiB each, 23-30% of a 70-135 ms render; measured on ../shared/corpus).
                _malloc_trim()


# Peak memory per source class, measured by `python -m bench --only memory` (peak RSS over one
# render, source bytes excluded, per corpus image; the section prints each estimate beside it).
_MiB = 1 << 20
_JPEG_FIXED = 2 * _MiB
"""JPEG: libjpeg's row buffers, the resize and the encoder, whatever the size (measured 2-3 MiB)."""
_JPEG_DECODED = 2
"""JPEG: bytes per decoded (post shrink-on-load) pixel and band: the pixels and one copy in flight."""
_PROGRESSIVE_EXTRA = 1.0
"""Progressive JPEG with subsampled chroma: bytes per source pixel beyond the 2-byte coefficients of
every sample (measured 3.0-4.3 B/px at 4:2:0, where the coefficients alone are 3). At 4:4:4 the
coefficients are the whole of it (5.75 B/px measured, 6 counted)."""
_PLAIN_PER_PIXEL = 2.0
_PLAIN_FIXED = 2 * _MiB
"""PNG (and other formats without shrink-on-load) without alpha: measured 1.85-1.95 B/px on 15 MP (est/peak 1.04)."""
_ALPHA_PER_PIXEL = 3.3
_ALPHA_SMALL_PER_PIXEL = 9.5
_ALPHA_SMALL_CAP = 24 * _MiB
"""With alpha: 3.1 B/px on 15 MP, but 7.2-9.1 B/px on 2-3 MP (the premultiplied resize's buffers),
so the larger of the two rates, the small-image one capped at what it was measured to reach."""


def estimate(info: SourceInfo, data_size: int, shrink: int) -> int:
    """Bytes a render of this source may hold at its peak, from the header alone.

    The source bytes, plus the measured peak of its class: JPEGs hold their decoded pixels
    (after shrink-on-load) and, when progressive, 2 bytes for every DCT sample of the whole
    image, whatever the shrink; other formats are decoded at full size and held by the
    resize in proportion to their pixels, more per pixel with alpha.
    """
    pixels = info.width * info.height
    bands = 4 if info.has_alpha else 3
    if info.format == "jpg":
        cost = _JPEG_FIXED + _JPEG_DECODED * bands * pixels // (shrink * shrink)
        if info.progressive:
            samples = info.samples or 3.0
            extra = _PROGRESSIVE_EXTRA if samples < 3.0 else 0.0
            cost += int(pixels * (2 * samples + extra))
    elif info.has_alpha:
        cost = _PLAIN_FIXED + int(
            max(pixels * _ALPHA_PER_PIXEL, min(pixels * _ALPHA_SMALL_PER_PIXEL, _ALPHA_SMALL_CAP))
        )
    else:
        cost = _PLAIN_FIXED + int(pixels * _PLAIN_PER_PIXEL)
    return data_size + cost


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_TRIM = _load_malloc_trim()


def _malloc_trim() -> None:
    if _TRIM is not None:
        _TRIM(0)


def release_free_memory() -> None:
    """Hand the memory malloc holds free back to the system (the pool calls it once idle)."""
    _malloc_trim()
