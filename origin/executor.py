"""Renders run off the event loop in a bounded pool with a bounded queue and a deadline.

A render takes its slot (`admit`) before its source is read, so a request the pool
cannot take is refused having read nothing from storage. The slot is held until the
render's thread has really finished, so a timed-out render keeps it until libvips has
honoured the kill flag: the pool can never hold more renders than it admits. Past
`workers + queue` the answer is 503 with Retry-After at once, instead of a queue that
grows without bound. Inside the pool, renders share a memory budget so heavy decodes
take turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import traceback
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .errors import Overloaded, RenderTimeout
from .render import RenderGuard
from .render.budget import MemoryBudget, release_free_memory
from .source_memory import Hold

T = TypeVar("T")
IDLE_TIDY_AFTER = 1.0
"""Seconds of an empty pool before what finished renders left behind is freed."""


class RenderPool:
    def __init__(self, workers: int, queue: int, timeout: float, retry_after: int, memory: int) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self.timeout = timeout
        self.retry_after = retry_after
        self.admitted = 0
        self.renders = 0
        self.budget = MemoryBudget(memory)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render")
        self._tidy: asyncio.TimerHandle | None = None

    def tidy_when_idle(self) -> None:
        """The pool, or the source memory, has emptied: unless work arrives within IDLE_TIDY_AFTER,
        tidy up (see `_tidy_if_idle`). Originals served without a render (64 slow readers of 13 MB
        files) leave their freed buffers to malloc as renders do: 161 MiB idle instead of 124."""
        if self._tidy is not None:
            self._tidy.cancel()
        self._tidy = asyncio.get_running_loop().call_later(IDLE_TIDY_AFTER, self._tidy_if_idle)

    def _tidy_if_idle(self) -> None:
        """Free what finished renders left behind, so an idle process shrinks back.

        A failed or timed-out render's exception holds its traceback, whose frames hold the
        source bytes and the pipeline's images: a reference cycle only the cyclic collector
        frees, and an idle process allocates nothing that would run it. Measured: 13 MB
        sources still resident 10 s after an overload ended. Then malloc keeps the freed
        pages in its arenas: one trim returns them.
        """
        self._tidy = None
        if self.admitted == 0:
            gc.collect()
            asyncio.get_running_loop().run_in_executor(None, release_free_memory)

    @property
    def queued(self) -> int:
        return max(0, self.admitted - self.workers)

    @contextlib.contextmanager
    def admit(self) -> Iterator[Slot]:
        """A slot for one render, taken now (503 when full) and held until the block ends or,
        once `Slot.run` has started, until the render's thread has finished."""
        if self.admitted >= self.capacity:
            raise Overloaded("the render queue is full; retry shortly", headers={"Retry-After": str(self.retry_after)})
        self.admitted += 1
        slot = Slot(self)
        try:
            yield slot
        finally:
            slot.leave()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Admit and run `fn(*args, guard)` in one go (nothing to read first)."""
        with self.admit() as slot:
            return await slot.run(fn, *args)

    def close(self) -> None:
        """Wait for renders in flight to finish (SIGTERM drains, it does not abandon)."""
        self._executor.shutdown(wait=True, cancel_futures=True)


class Slot:
    """One admitted render, and what it keeps alive (the source bytes it holds) until it ends."""

    def __init__(self, pool: RenderPool) -> None:
        self._pool = pool
        self._holds: list[Hold] = []
        self._running = False
        self._released = False

    def keep(self, hold: Hold) -> None:
        """Release `hold` with the slot: the render's thread holds the source bytes until it ends."""
        self._holds.append(hold)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args, guard)` in the pool; 503 once it has run past the deadline.

        The deadline counts from when a thread starts the render, not from submission: time
        spent queued is bounded by the queue's length, and a render killed for time it spent
        waiting would be work thrown away exactly when the pool is busiest (measured: under 64
        concurrent cold renders, nearly every admitted render timed out in the queue).
        """
        pool = self._pool
        guard = RenderGuard(pool.budget)
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        def call() -> T:
            loop.call_soon_threadsafe(started.set)
            return fn(*args, guard)

        pool.renders += 1
        future = loop.run_in_executor(pool._executor, call)
        self._running = True  # from here the thread owns the slot
        future.add_done_callback(self._finished)
        await _first(started.wait(), future)
        try:
            return await asyncio.wait_for(asyncio.shield(future), pool.timeout)
        except TimeoutError:
            guard.kill()
            raise RenderTimeout(
                f"the render took longer than {pool.timeout:g} s", headers={"Retry-After": str(pool.retry_after)}
            ) from None

    def leave(self) -> None:
        """The admitting block ended: release now unless a render thread still owns the slot."""
        if not self._running:
            self._release()

    def _finished(self, future: asyncio.Future[Any]) -> None:
        self._release()
        if not future.cancelled():
            # Retrieved here so a killed render's error is never "unhandled"; its frames are cleared
            # so they stop holding the source and the pipeline's images (see `_tidy_if_idle`).
            _clear_frames(future.exception())

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        self._pool.admitted -= 1
        if self._pool.admitted == 0:
            self._pool.tidy_when_idle()
        for hold in self._holds:
            hold.release()


async def _first(started: Coroutine[Any, Any, object], future: asyncio.Future[Any]) -> None:
    """Return once the render has started in its thread, or has ended without starting."""
    waiting = asyncio.ensure_future(started)
    try:
        await asyncio.wait({waiting, future}, return_when=asyncio.FIRST_COMPLETED)  # wait() cancels neither
    finally:
        waiting.cancel()


def _clear_frames(exc: BaseException | None) -> None:
    """Drop the locals of the finished frames behind `exc` and its causes (still-running ones are kept)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__
