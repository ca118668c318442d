"""Renders run off the event loop in a bounded pool with a bounded queue and a deadline.

Admission is counted from submission until the render's thread has really finished,
so a timed-out render keeps its slot until libvips has honoured the kill flag: the
pool can never hold more renders than it admits. Past `workers + queue` the answer
is 503 with Retry-After at once, instead of a queue that grows without bound. Inside
the pool, renders share a memory budget so heavy decodes take turns.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .errors import Overloaded, RenderTimeout
from .render import RenderGuard
from .render.budget import MemoryBudget

T = TypeVar("T")


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

    @property
    def queued(self) -> int:
        return max(0, self.admitted - self.workers)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args, guard)` in the pool; 503 when full or past the deadline."""
        retry = {"Retry-After": str(self.retry_after)}
        if self.admitted >= self.capacity:
            raise Overloaded("the render queue is full; retry shortly", headers=retry)
        guard = RenderGuard(self.budget)
        loop = asyncio.get_running_loop()
        self.admitted += 1
        self.renders += 1
        future = loop.run_in_executor(self._executor, functools.partial(fn, *args, guard))
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            guard.kill()
            raise RenderTimeout(f"the render took longer than {self.timeout:g} s", headers=retry) from None

    def _release(self, future: asyncio.Future[Any]) -> None:
        self.admitted -= 1
        if not future.cancelled():
            future.exception()  # retrieved here so a killed render's error is never "unhandled"

    def close(self) -> None:
        """Wait for renders in flight to finish (SIGTERM drains, it does not abandon)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
