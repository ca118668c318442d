"""In-process coalescing: concurrent misses for one variant share one render.

The first caller (the leader) starts the work as a task owned by the loop, not by its
request, so a client that disconnects does not cancel the render the others wait for.
Every waiter awaits that one task: if it fails, each gets the error once, and the key
is forgotten as soon as the task ends, so the next request tries afresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The result of `work()` for `key`, and whether this caller started it."""
        task = self._tasks.get(key)
        leader = task is None
        if task is None:
            task = asyncio.get_running_loop().create_task(work())  # type: ignore[arg-type]
            self._tasks[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task), leader

    def _forget(self, key: str, task: asyncio.Task[T]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited is not "never retrieved"
