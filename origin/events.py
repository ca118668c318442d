"""The origin's own writes as storage events, so uploads through the API are pre-rendered too.

With Redis, events go to the stream the workers read (XADD; a failure is logged, never
the request's failure: the GET path renders on demand whatever happens here). On the
embedded default there is no worker: a bounded in-process queue feeds the handler in
this process, and when it is full an event is logged and dropped, for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol, TypeVar

from .access import Access
from .cache import redis as redis_cache
from .settings import Configs, EventsConfig, RedisConfig
from .storage import ObjectInfo
from .storage_events import Handler, StorageEvent, stream_key, to_fields

if TYPE_CHECKING:
    from .app import Resources

T = TypeVar("T")
HandlerFactory = Callable[[Configs, Access, "Resources"], AbstractAsyncContextManager[Handler]]
"""Makes the in-process handler from the app's configs, access policy and open resources (so it
renders with the app's render pool and forgets the versions the app caches): an async context
manager yielding it, entered for the app's lifetime (whatever it opens closes with the app)."""
SOURCE = "origin"
log = logging.getLogger("origin.events")


class Emitter(Protocol):
    async def emit(self, event: StorageEvent) -> None:
        """Hand the event on; never raises, never waits for the event to be handled."""


class NoEmitter:
    """No Redis and no in-process handler: nothing to tell."""

    async def emit(self, event: StorageEvent) -> None:
        return None


class StreamEmitter:
    """Appends to the Redis stream, within `redis_timeout`, trimmed to about `events_stream_maxlen`."""

    def __init__(self, redis: RedisConfig, maxlen: int) -> None:
        self.client = redis_cache.connect(redis.url, redis.timeout)
        self.stream = stream_key(redis.prefix)
        self.timeout = redis.timeout
        self.maxlen = maxlen

    async def emit(self, event: StorageEvent) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.xadd(self.stream, to_fields(event), maxlen=self.maxlen, approximate=True)
        except Exception as exc:  # noqa: BLE001 - an event lost costs a render on demand, never the request
            log.warning("could not queue %s %r (%s: %s)", event.kind, event.key, type(exc).__name__, exc)

    async def close(self) -> None:
        await self.client.aclose()


class QueueEmitter:
    """A bounded queue and one task that hands each event to the handler, in this process."""

    def __init__(self, handler: Handler, size: int) -> None:
        self.handler = handler
        self.queue: asyncio.Queue[StorageEvent] = asyncio.Queue(size)
        self._busy = False
        self._closing = False
        self._task = asyncio.get_running_loop().create_task(self._consume())

    async def emit(self, event: StorageEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("event queue full (%d): dropped %s %r", self.queue.maxsize, event.kind, event.key)

    async def close(self) -> None:
        """Finish the event being handled; the ones still queued are dropped (and counted)."""
        self._closing = True
        if not self._busy:
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if not self.queue.empty():
            log.info("stopping: %d queued events dropped", self.queue.qsize())

    async def _consume(self) -> None:
        while not self._closing:
            event = await self.queue.get()
            self._busy = True
            try:
                await self.handler.handle(event)
            except Exception:  # no retry here: the GET path renders on demand
                log.exception("event %s %r failed; dropped", event.kind, event.key)
            finally:
                self._busy = False


@contextlib.asynccontextmanager
async def open_emitter(
    redis: RedisConfig | None,
    config: EventsConfig,
    make_handler: Callable[[], AbstractAsyncContextManager[Handler]] | None,
) -> AsyncIterator[Emitter]:
    """The stream with Redis, else the in-process queue to the handler `make_handler` opens, else
    nothing. Open it once the app's resources are (the in-process handler uses them), close it
    once the writes that emit have drained (create_app's lifetime does both)."""
    async with contextlib.AsyncExitStack() as stack:
        if redis is not None:
            stream = StreamEmitter(redis, config.stream_maxlen)
            stack.push_async_callback(stream.close)
            yield stream
        elif make_handler is not None:
            handler = await stack.enter_async_context(make_handler())
            local = QueueEmitter(handler, config.queue_size)
            stack.push_async_callback(local.close)
            yield local
        else:
            yield NoEmitter()


async def announced(emitter: Emitter, work: Awaitable[T], events: Callable[[T], Iterable[StorageEvent]]) -> T:
    """`work`'s result, once the events it describes are emitted (nothing when it fails).

    Run inside the write's own app-owned task, so a client that hangs up loses no event.
    """
    result = await work
    for event in events(result):
        await emitter.emit(event)
    return result


def created(info: ObjectInfo) -> StorageEvent:
    return StorageEvent("created", info.key, info.etag or None, SOURCE)


def removed(key: str) -> StorageEvent:
    return StorageEvent("removed", key, None, SOURCE)
