"""A memory budget shared by the render threads, so heavy decodes take turns.

Peak memory, not CPU, is where libvips servers lose: two 17 MP progressive JPEGs
decoded at once hold ~100 MiB of DCT coefficients each. Each render reserves its
estimated cost before decoding; a render that would push the total past the limit
waits for others to finish (one alone always runs, however large). After a large
render the allocator is asked to hand freed memory back to the system.
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
                self._cond.notify_all()
            if cost >= _TRIM_AFTER:
                _malloc_trim()


def estimate(info: SourceInfo, data_size: int, shrink: int) -> int:
    """Bytes a render of this source may hold at its peak, from the header alone.

    The source bytes, the decoded pixels (after JPEG shrink-on-load), and for a
    progressive JPEG the coefficient buffers libjpeg keeps for the whole image
    (measured ~6 bytes a pixel, whatever the shrink).
    """
    pixels = info.width * info.height
    bands = 4 if info.has_alpha else 3
    cost = data_size + pixels * bands // (shrink * shrink)
    if info.progressive:
        cost += pixels * 6
    return cost


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
