"""The shared cache replicas meet in: hot variants, source metadata, render locks, popularity.

Redis is an optimisation, never a dependency of a response: every call runs under a
short deadline, and any error or timeout reads as a miss, is counted in `errors`, and
opens a breaker during which Redis is not asked at all, so a dead Redis costs no
latency. Nothing on the memory-hit path waits for Redis: sightings and popularity are
counted in process; admissions are written, and counts flushed, by background tasks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..settings import Settings
from ..spec import TransformSpec, canonical
from ..storage import ObjectInfo

T = TypeVar("T")
log = logging.getLogger("origin.redis")

POPULARITY_TTL = 8 * 86400
"""A day's popularity set outlives a week, so the worker can read the last seven full days."""
MAX_SIGHTINGS = 100_000
"""In-process sighting records kept at most (oldest dropped first), so a crawler cannot grow them."""
_HEADER_LENGTH = struct.Struct(">I")
_UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@dataclass(frozen=True, slots=True)
class Stored:
    """A variant as Redis holds it: its bytes and the little the HTTP layer needs to describe them."""

    body: bytes
    content_type: str
    negotiated: bool
    source: ObjectInfo


def connect(url: str, timeout: float) -> aioredis.Redis:
    """One client (and connection pool) per process. No retries: the breaker decides when to try again."""
    return aioredis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


class RedisCache:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "io:",
        timeout: float = 0.1,
        breaker_seconds: float = 5.0,
        hot_sightings: int = 2,
        hot_window: float = 600.0,
        max_entry_bytes: int = 2 * 1024 * 1024,
        variant_ttl: float = 86400.0,
        metadata_ttl: float = 30.0,
        flush_interval: float = 10.0,
        lease: float = 15.0,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.timeout = timeout
        self.breaker_seconds = breaker_seconds
        self.hot_sightings = hot_sightings
        self.hot_window = hot_window
        self.max_entry_bytes = max_entry_bytes
        self.variant_ttl_ms = int(variant_ttl * 1000)
        self.metadata_ttl_ms = int(metadata_ttl * 1000)
        self.flush_interval = flush_interval
        self.lease = lease
        self.lease_ms = int(lease * 1000)
        self.errors = 0
        """Redis calls that failed or timed out (each one answered as a miss)."""
        self._open_until = 0.0
        self._sightings: dict[str, tuple[float, int]] = {}
        self._pending: Counter[str] = Counter()
        self._specs: dict[str, TransformSpec] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._unlock = client.register_script(_UNLOCK)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisCache | None:
        """The shared cache `settings` ask for; None when no `redis_url` is set (one machine)."""
        if settings.redis_url is None:
            return None
        return cls(
            connect(settings.redis_url, settings.redis_timeout),
            prefix=settings.redis_prefix,
            timeout=settings.redis_timeout,
            breaker_seconds=settings.redis_breaker_seconds,
            hot_sightings=settings.redis_hot_sightings,
            hot_window=settings.redis_hot_window,
            max_entry_bytes=settings.redis_max_entry_bytes,
            variant_ttl=settings.redis_variant_ttl,
            metadata_ttl=settings.redis_metadata_ttl,
            flush_interval=settings.redis_flush_interval,
            lease=settings.redis_lease,
        )

    # Variants: one key each, header and body together, so a lookup is one round trip.

    async def get_variant(self, name: str) -> Stored | None:
        async def fetch() -> Stored | None:
            raw = await self._get(self._variant(name))
            return _decode(raw) if raw is not None else None

        return await self._call(fetch, None)

    async def publish(self, name: str, stored: Stored) -> None:
        """Store a fresh render for the lease's length, so replicas waiting on its lock can read it."""
        if len(stored.body) <= self.max_entry_bytes:
            await self._write(lambda: self.client.set(self._variant(name), _encode(stored), px=self.lease_ms))

    def served(self, name: str, spec: TransformSpec) -> bool:
        """Count one response (popularity, sightings); True when this one makes the variant hot.

        Pure bookkeeping in memory: this runs on every hit, so it never talks to Redis.
        """
        self._pending[name] += 1
        self._specs.setdefault(name, spec)
        now = time.monotonic()
        since, count = self._sightings.get(name, (now, 0))
        if now - since > self.hot_window:
            del self._sightings[name]  # re-inserted below, at the young end
            since, count = now, 0
        self._sightings[name] = (since, count + 1)
        if len(self._sightings) > MAX_SIGHTINGS:
            del self._sightings[next(iter(self._sightings))]
        return count + 1 == self.hot_sightings

    def admit(self, name: str, stored: Stored) -> None:
        """Keep a hot variant for the variant TTL, written in the background (the caller never waits)."""
        if len(stored.body) <= self.max_entry_bytes and not self._is_open():
            ttl = self.variant_ttl_ms
            self._spawn(self._write(lambda: self.client.set(self._variant(name), _encode(stored), px=ttl)))

    # Source metadata, shared so N replicas ask storage once per TTL rather than N times.

    async def get_info(self, key: str) -> ObjectInfo | None:
        if self.metadata_ttl_ms <= 0:
            return None

        async def fetch() -> ObjectInfo | None:
            raw = await self._get(self._info(key))
            return ObjectInfo(**json.loads(raw)) if raw is not None else None

        return await self._call(fetch, None)

    async def put_info(self, info: ObjectInfo) -> None:
        if self.metadata_ttl_ms > 0:
            raw = json.dumps(dataclasses.asdict(info))
            await self._write(lambda: self.client.set(self._info(info.key), raw, px=self.metadata_ttl_ms))

    async def invalidate(self, key: str) -> None:
        await self._write(lambda: self.client.delete(self._info(key)))

    # Render locks across replicas (see singleflight.ReplicaFlight).

    async def claim(self, name: str) -> tuple[str | None, Stored | None]:
        """Try for the variant's lease and look for its result, in one round trip.

        The token when this process now holds the lease (None: another replica does; "":
        Redis cannot say, so render without a lease rather than wait for nobody), and the
        variant if it is published already: a holder may have finished since our lookup.
        """
        token = secrets.token_hex(8)

        async def both() -> tuple[str | None, Stored | None]:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.set(self._lock(name), token, nx=True, px=self.lease_ms)
                pipe.get(self._variant(name))
                taken, raw = await pipe.execute()
            return (token if taken else None), (_decode(raw) if raw is not None else None)

        return await self._call(both, ("", None))

    async def unlock(self, name: str, token: str) -> None:
        """Release the lease only if it is still ours (it may have expired and been taken)."""
        await self._write(lambda: self._unlock(keys=[self._lock(name)], args=[token]))

    async def peek(self, name: str) -> tuple[Stored | None, bool]:
        """The variant if published, and whether its lease is still held: one round trip."""

        async def both() -> tuple[Stored | None, bool]:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.get(self._variant(name))
                pipe.exists(self._lock(name))
                raw, held = await pipe.execute()
            return (_decode(raw) if raw is not None else None), bool(held)

        return await self._call(both, (None, False))

    async def ping(self) -> bool:
        """For readiness: False while the breaker is open, or when PING fails (which opens it)."""
        return bool(await self._call(self.client.ping, False))

    # Popularity: counted in memory, flushed as one pipeline of ZINCRBY per interval.

    def start(self) -> None:
        self._flusher = asyncio.get_running_loop().create_task(self._flush_every())

    async def flush(self) -> None:
        """Add the counts since the last flush to today's (UTC) sorted set; on failure they are dropped."""
        if not self._pending:
            return
        pending, specs = self._pending, self._specs
        self._pending, self._specs = Counter(), {}
        totals: Counter[str] = Counter()
        for name, count in pending.items():
            # `dl` names the download, not the bytes: the same render whatever it says.
            totals[canonical(dataclasses.replace(specs[name], dl=None))] += count
        day = self._day(datetime.now(UTC))

        async def write() -> None:
            async with self.client.pipeline(transaction=False) as pipe:
                for text, count in totals.items():
                    pipe.zincrby(day, count, text)
                pipe.expire(day, POPULARITY_TTL)
                await pipe.execute()

        await self._write(write)

    async def popular(self, count: int, days: int = 2) -> list[str]:
        """The `count` canonical specs served most over the last `days` UTC days, most first.

        For the worker's pre-render. The days are summed in Redis into a scratch key that
        lives only inside the transaction, so only `count` strings cross the network.
        """
        if count <= 0:
            return []
        today = datetime.now(UTC)
        sets = [self._day(today - timedelta(days=back)) for back in range(days)]
        scratch = f"{self.prefix}pop:top:{secrets.token_hex(8)}"

        async def top() -> list[str]:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.zunionstore(scratch, sets)
                pipe.zrevrange(scratch, 0, count - 1)
                pipe.delete(scratch)
                _, names, _ = await pipe.execute()
            return [name.decode() for name in names]

        return await self._call(top, [])

    async def close(self) -> None:
        """Stop flushing, finish the writes in flight, flush once more, close the pool."""
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()
        await self.client.aclose()

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    # The breaker: every call goes through here.

    async def _call(self, op: Callable[[], Awaitable[T]], default: T) -> T:
        if self._is_open():
            return default
        try:
            async with asyncio.timeout(self.timeout):
                return await op()
        except Exception as exc:  # noqa: BLE001 - a cache failure must never become the response
            self.errors += 1
            if not self._is_open():
                log.warning(
                    "redis failed (%s: %s); not asking it again for %g s", type(exc).__name__, exc, self.breaker_seconds
                )
            self._open_until = time.monotonic() + self.breaker_seconds
            return default

    async def _write(self, op: Callable[[], Awaitable[object]]) -> None:
        await self._call(op, None)

    async def _get(self, key: str) -> bytes | None:
        return cast(bytes | None, await self.client.get(key))  # bytes: the client does not decode

    def _is_open(self) -> bool:
        return self._open_until > time.monotonic()

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _day(self, moment: datetime) -> str:
        """One UTC day's popularity set: canonical spec -> responses served."""
        return f"{self.prefix}pop:{moment:%Y%m%d}"

    def _variant(self, name: str) -> str:
        return f"{self.prefix}v:{name}"

    def _info(self, key: str) -> str:
        return f"{self.prefix}meta:{key}"

    def _lock(self, name: str) -> str:
        return f"{self.prefix}lock:{name}"


def _encode(stored: Stored) -> bytes:
    header = json.dumps(
        {"type": stored.content_type, "negotiated": stored.negotiated, "source": dataclasses.asdict(stored.source)}
    ).encode()
    return _HEADER_LENGTH.pack(len(header)) + header + stored.body


def _decode(raw: bytes) -> Stored:
    (length,) = _HEADER_LENGTH.unpack_from(raw)
    start = _HEADER_LENGTH.size
    header = json.loads(raw[start : start + length])
    return Stored(raw[start + length :], header["type"], header["negotiated"], ObjectInfo(**header["source"]))
