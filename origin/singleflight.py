"""Coalescing: concurrent misses for one variant share one render, in a process and across replicas.

In a process (`SingleFlight`), the first caller (the leader) starts the work as a task
owned by the loop, not by its request, so a client that disconnects does not cancel
the render the others wait for. Every waiter awaits that one task: if it fails, each
gets the error once, and the key is forgotten as soon as the task ends, so the next
request tries afresh.

Across replicas (`ReplicaFlight`), each process's leader asks for the variant's lease
through the `Leases` protocol (Redis in practice: `cache.redis.leases`). The holder
renders, publishes the result and releases the lease; the others poll for the result.
A lease released without a result (the render failed, or was too large to share) or
expired (its holder died) sends the waiters back to try for the lease themselves, so
they render rather than wait for nobody; so does Redis failing, so coalescing across
replicas is an optimisation, never a dependency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

POLL_SECONDS = 0.025
"""How often a waiting replica looks for the holder's result: small beside a render (~100 ms)."""


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


class Leases(Protocol[R_co]):
    """Render leases shared by the replicas; a holder publishes its result under the lease's name."""

    @property
    def lease(self) -> float:
        """Seconds a lease lasts unless released: how long a waiter waits for a holder at most."""

    async def claim(self, name: str) -> tuple[str | None, R_co | None]:
        """Try for the lease and look for the result at once: the token if this caller now holds
        the lease (None: another does; "": nobody can say, so go on without one), and the result
        if already published."""

    async def unlock(self, name: str, token: str) -> None:
        """Release the lease if `token` still holds it."""

    async def peek(self, name: str) -> tuple[R_co | None, bool]:
        """The published result, if any, and whether the lease is still held."""


class ReplicaFlight(Generic[R]):
    def __init__(self, leases: Leases[R], poll: float = POLL_SECONDS) -> None:
        self.leases = leases
        self.poll = poll

    async def run(self, name: str, work: Callable[[], Awaitable[T]]) -> R | T:
        """Another replica's published result for `name`, or `work()`'s, run under the lease.

        `work` publishes its result itself (to `name`, before the lease is released), so a
        waiter that sees the lease gone and no result knows there is none coming.
        """
        while True:
            token, found = await self.leases.claim(name)
            if found is not None:
                if token:
                    await self.leases.unlock(name, token)
                return found
            if token is not None:
                try:
                    return await work()
                finally:
                    if token:
                        await self.leases.unlock(name, token)
            found = await self._wait(name)
            if found is not None:
                return found

    async def _wait(self, name: str) -> R | None:
        """The holder's result, or None once its lease is released or expired."""
        deadline = time.monotonic() + self.leases.lease
        while time.monotonic() < deadline:
            await asyncio.sleep(self.poll)
            found, held = await self.leases.peek(name)
            if found is not None or not held:
                return found
        return None
