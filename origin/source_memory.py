"""A byte budget for source bytes held in memory at once, whatever the request mix.

Renders hold their source (and watermark) from the storage read until the render's thread
has finished; small originals read whole hold theirs until the response is written; each
streamed original holds one chunk. Every size is known from the metadata before anything
is read, so a request takes its bytes here first: one that cannot get them within a short
wait is refused (503 + Retry-After) having read nothing. Waiters are served first come,
first served, so a large source is not starved by a stream of small ones. One request
alone always gets its bytes, however large (`max_source_bytes` bounds that).

Single-threaded by design: only the event loop takes and gives back bytes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from .errors import Overloaded


class Hold:
    """Bytes taken from the budget; `release` gives them back (once, however often called)."""

    __slots__ = ("_memory", "size")

    def __init__(self, memory: SourceMemory, size: int) -> None:
        self._memory: SourceMemory | None = memory
        self.size = size

    def release(self) -> None:
        memory, self._memory = self._memory, None
        if memory is not None:
            memory._give_back(self.size)


class SourceMemory:
    def __init__(self, limit: int, wait: float, retry_after: int, on_empty: Callable[[], None] | None = None) -> None:
        """`on_empty` is called each time the last held byte is given back (the app tidies memory then)."""
        self.limit = limit
        self.wait = wait
        self.retry_after = retry_after
        self.used = 0
        self.refused = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._on_empty = on_empty

    async def hold(self, size: int) -> Hold:
        """Take `size` bytes, waiting at most `wait` seconds; Overloaded (503) past it."""
        size = min(size, self.limit)
        if not self._waiters and self._fits(size):
            self.used += size
            return Hold(self, size)
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((size, granted))
        try:
            async with asyncio.timeout(self.wait):
                await granted
        except BaseException as exc:
            if granted.done() and not granted.cancelled():
                self._give_back(size)  # granted just as the wait ended: hand it on
            else:
                granted.cancel()
                self._grant()  # a waiter that gave up at the head may have blocked smaller ones
            if isinstance(exc, TimeoutError):
                self.refused += 1
                raise Overloaded(
                    "too many source bytes are in memory; retry shortly",
                    headers={"Retry-After": str(self.retry_after)},
                ) from None
            raise
        return Hold(self, size)

    def _fits(self, size: int) -> bool:
        return self.used == 0 or self.used + size <= self.limit

    def _give_back(self, size: int) -> None:
        self.used -= size
        self._grant()
        if self.used == 0 and self._on_empty is not None:
            self._on_empty()

    def _grant(self) -> None:
        while self._waiters:
            size, granted = self._waiters[0]
            if granted.done():
                self._waiters.popleft()  # gave up waiting
                continue
            if not self._fits(size):
                return
            self._waiters.popleft()
            self.used += size
            granted.set_result(None)
