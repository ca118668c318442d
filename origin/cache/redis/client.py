"""The one Redis client every shared-cache job talks through: a deadline and a breaker on each call.

Redis is an optimisation, never a dependency of a response. So every call runs under a
short deadline, and any error or timeout reads as the caller's default (a miss), is
counted in `errors`, and opens a breaker during which Redis is not asked at all, so a
dead Redis costs no latency and each job keeps no failure handling of its own. Writes
nobody should wait for run as background tasks this client owns, so closing it finishes
them before the connection pool goes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

T = TypeVar("T")
log = logging.getLogger("origin.redis")


def connect(url: str, timeout: float) -> aioredis.Redis:
    """One client (and connection pool) per process. No retries: the breaker decides when to try again."""
    return aioredis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


class RedisClient:
    def __init__(self, raw: aioredis.Redis, *, prefix: str, timeout: float, breaker_seconds: float) -> None:
        self.raw = raw
        """The redis-py client: only ever used inside an operation handed to `call` or `write`."""
        self.prefix = prefix
        self.timeout = timeout
        self.breaker_seconds = breaker_seconds
        self.errors = 0
        """Redis calls that failed or timed out (each one answered as a miss)."""
        self._open_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    def key(self, kind: str, name: str) -> str:
        """Every key the origin writes: `{prefix}{kind}:{name}`, so one prefix keeps deployments apart."""
        return f"{self.prefix}{kind}:{name}"

    async def call(self, op: Callable[[], Awaitable[T]], default: T) -> T:
        """`op()` under the deadline, or `default` when the breaker is open or `op` fails."""
        if self.is_open():
            return default
        try:
            async with asyncio.timeout(self.timeout):
                return await op()
        except Exception as exc:  # noqa: BLE001 - a cache failure must never become the response
            self.errors += 1
            if not self.is_open():
                log.warning(
                    "redis failed (%s: %s); not asking it again for %g s", type(exc).__name__, exc, self.breaker_seconds
                )
            self._open_until = time.monotonic() + self.breaker_seconds
            return default

    async def write(self, op: Callable[[], Awaitable[object]]) -> None:
        """A call whose answer nobody reads."""
        await self.call(op, None)

    def background(self, work: Coroutine[None, None, None]) -> None:
        """Run `work` (a `write`) without anyone waiting for it; `close` finishes it."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def is_open(self) -> bool:
        """True while the breaker keeps Redis out of every call."""
        return self._open_until > time.monotonic()

    async def ping(self) -> bool:
        """For readiness: False while the breaker is open, or when PING fails (which opens it)."""
        return bool(await self.call(self.raw.ping, False))

    async def close(self) -> None:
        """Finish the writes in flight, then close the pool."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.raw.aclose()
