"""The Redis stream of events (`{redis_prefix}events`), read by competing workers.

The origin's own writes and the webhook's deliveries land here. Workers read it in one
consumer group, so each entry goes to one worker; an entry is acknowledged (XACK) only
once handled. An entry left unacknowledged for `events_claim_idle` seconds, because its
handler failed or its worker died, is claimed by whichever worker looks next (XAUTOCLAIM),
so a crash loses nothing; past `events_max_deliveries` deliveries it is logged and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from origin.settings import WorkerConfig
from origin.storage_events import Handler, MalformedEvent, from_fields

from . import backoff, until_stopped

log = logging.getLogger("workers.stream")
GROUP = "workers"
BLOCK_SECONDS = 2.0
"""How long one read waits for new entries (at most `events_claim_idle`): stale entries are
looked for between reads."""
_TRANSIENT = (RedisError, OSError, asyncio.TimeoutError)


def open_redis(config: WorkerConfig) -> aioredis.Redis:
    """The worker's client: calls get `worker_redis_timeout`, a blocking read that plus its block."""
    if config.redis_url is None:
        raise ValueError("the Redis stream needs redis_url")
    return aioredis.Redis.from_url(
        config.redis_url,
        socket_connect_timeout=config.redis_timeout,
        socket_timeout=config.redis_timeout + BLOCK_SECONDS,
        retry=Retry(NoBackoff(), 1),  # one retry on a fresh connection; the loops below pace the rest
    )


def consumer_name() -> str:
    """Unique per process, so a restarted worker never inherits (and waits on) a dead one's entries."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class StreamConsumer:
    def __init__(self, config: WorkerConfig, handler: Handler, *, name: str | None = None) -> None:
        self.config = config
        self.handler = handler
        self.name = name or consumer_name()
        self.stream = config.stream
        self.batch = config.concurrency
        self.claim_idle_ms = int(config.claim_idle * 1000)
        self.block_ms = max(1, int(min(BLOCK_SECONDS, config.claim_idle) * 1000))  # 0 blocks forever
        self.max_deliveries = config.max_deliveries
        self._cursor = "0-0"

    async def run(self, stop: asyncio.Event) -> None:
        client = open_redis(self.config)
        try:
            await self._consume(client, stop)
            await self._leave(client)
        finally:
            await client.aclose()

    async def _consume(self, client: aioredis.Redis, stop: asyncio.Event) -> None:
        failures = 0
        grouped = False
        while not stop.is_set():
            try:
                if not grouped:
                    await _ensure_group(client, self.stream)
                    grouped = True
                claimed = await self._claim(client)
                if claimed:
                    await self._handle_all(client, claimed)
                    continue
                read = client.xreadgroup(GROUP, self.name, {self.stream: ">"}, count=self.batch, block=self.block_ms)
                finished, reply = await until_stopped(stop, read)
            except _TRANSIENT as exc:
                failures += 1
                grouped = False  # the stream or its group may be what went missing (NOGROUP)
                pause = backoff(failures, 1.0, 30.0)
                log.warning(
                    "reading the event stream failed (%s: %s); trying again in %g s", type(exc).__name__, exc, pause
                )
                await until_stopped(stop, asyncio.sleep(pause))
                continue
            if not finished:
                return
            failures = 0
            for entries in _batches(reply):
                await self._handle_all(client, entries)

    async def _claim(self, client: aioredis.Redis) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        """Entries idle past `events_claim_idle` (a failure, or a worker that died), now ours;
        those delivered too often already are logged and acknowledged instead."""
        reply = await client.xautoclaim(
            self.stream, GROUP, self.name, min_idle_time=self.claim_idle_ms, start_id=self._cursor, count=self.batch
        )
        self._cursor = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        entries: list[tuple[bytes, dict[bytes, bytes] | None]] = reply[1]
        if not entries:
            return []
        async with client.pipeline(transaction=False) as pipe:
            for entry_id, _fields in entries:
                pipe.xpending_range(self.stream, GROUP, min=entry_id, max=entry_id, count=1)
            pending = await pipe.execute()
        keep = []
        for (entry_id, fields), rows in zip(entries, pending, strict=True):
            delivered = rows[0]["times_delivered"] if rows else 1
            if delivered > self.max_deliveries:
                log.error("dropping stream entry %s after %d deliveries: %s", entry_id.decode(), delivered - 1, fields)
                await client.xack(self.stream, GROUP, entry_id)
            else:
                keep.append((entry_id, fields))
        return keep

    async def _handle_all(self, client: aioredis.Redis, entries: list[Any]) -> None:
        await asyncio.gather(*(self._handle(client, entry_id, fields) for entry_id, fields in entries))

    async def _handle(self, client: aioredis.Redis, entry_id: bytes, fields: dict[bytes, bytes] | None) -> None:
        try:
            event = from_fields(fields or {})
        except MalformedEvent as exc:
            log.warning("dropping stream entry %s: %s", entry_id.decode(), exc)
        else:
            try:
                await self.handler.handle(event)
            except Exception as exc:  # noqa: BLE001 - any handler failure means "try again later"
                log.warning(
                    "event %s %r failed (%s: %s); retried once idle for %g s",
                    event.kind,
                    event.key,
                    type(exc).__name__,
                    exc,
                    self.claim_idle_ms / 1000,
                )
                return
        try:
            await client.xack(self.stream, GROUP, entry_id)
        except _TRANSIENT as exc:
            log.warning(
                "could not acknowledge stream entry %s (%s); it will be delivered again", entry_id.decode(), exc
            )

    async def _leave(self, client: aioredis.Redis) -> None:
        """On a clean stop, remove this consumer from the group if it holds nothing (names are per process)."""
        try:
            if not await client.xpending_range(self.stream, GROUP, min="-", max="+", count=1, consumername=self.name):
                await client.xgroup_delconsumer(self.stream, GROUP, self.name)
        except _TRANSIENT as exc:
            log.info("could not leave the consumer group (%s)", exc)


def _batches(reply: Any) -> list[list[Any]]:
    """The entry lists of an XREADGROUP reply: redis-py answers `[[stream, entries]]` over RESP2 and
    `{stream: [entries]}` over RESP3 (`?protocol=3` in redis_url)."""
    if isinstance(reply, dict):
        return [entries for batches in reply.values() for entries in batches]
    return [entries for _stream, entries in reply or []]


async def _ensure_group(client: aioredis.Redis, stream: str) -> None:
    """Create the group (and the stream) if missing, reading from the start: nothing queued before
    the first worker started is skipped."""
    try:
        await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
