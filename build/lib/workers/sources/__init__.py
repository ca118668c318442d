"""Where events come from: an SQS queue, a webhook (MinIO, Ceph RGW), the Redis stream.

Every source acknowledges a message only once the handler has succeeded with all of
its events, so a crash or a failure means redelivery, never loss; each runs until its
`stop` event is set, then finishes the events in flight and returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Source(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


async def until_stopped(stop: asyncio.Event, work: Awaitable[T]) -> tuple[bool, T | None]:
    """(True, result) when `work` finished first; (False, None) when `stop` was set first.

    For waits that hold nothing yet (a long poll, a blocking read, a pause): cancelling them
    loses nothing, and a stopping worker does not sit out a 20 s poll.
    """
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        stopped.cancel()
    if task.done():
        return True, task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return False, None


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before try `attempt + 1`: doubling from `base`, never past `cap`."""
    return min(cap, base * 2 ** min(attempt - 1, 32))
