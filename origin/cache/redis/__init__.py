"""The shared cache replicas meet in: hot variants, source versions, render leases, popularity.

Redis is an optimisation, never a dependency of a response. Each job is its own module
over one `RedisClient`, through which every call goes: a short deadline, and a breaker
that turns any error or timeout into a miss and keeps Redis out of every call for a
while, so a dead Redis costs neither errors nor latency. Nothing on the memory-hit path
waits for Redis: sightings and popularity are counted in process; admissions are
written, and counts flushed, by background tasks.

`connect` is looked up here when a cache is opened (and by `events.StreamEmitter`), so a
test replaces it once to put every app in the process on one in-memory server.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...settings import Settings
from .client import RedisClient, connect
from .leases import RedisLeases
from .metadata import SharedMetadata
from .popularity import Popularity
from .variants import SharedVariants, Stored

__all__ = [
    "Popularity",
    "RedisClient",
    "RedisLeases",
    "SharedCache",
    "SharedMetadata",
    "SharedVariants",
    "Stored",
    "connect",
]


@dataclass(frozen=True, slots=True)
class SharedCache:
    """The jobs, each over the same client (so one breaker and one error count for all)."""

    client: RedisClient
    variants: SharedVariants
    metadata: SharedMetadata
    leases: RedisLeases
    popularity: Popularity

    @classmethod
    def from_settings(cls, settings: Settings) -> SharedCache | None:
        """The shared cache `settings` ask for; None when no `redis_url` is set (one machine)."""
        if settings.redis_url is None:
            return None
        client = RedisClient(
            connect(settings.redis_url, settings.redis_timeout),
            prefix=settings.redis_prefix,
            timeout=settings.redis_timeout,
            breaker_seconds=settings.redis_breaker_seconds,
        )
        variants = SharedVariants(
            client,
            hot_sightings=settings.redis_hot_sightings,
            hot_window=settings.redis_hot_window,
            max_entry_bytes=settings.redis_max_entry_bytes,
            ttl=settings.redis_variant_ttl,
            lease=settings.redis_lease,
        )
        return cls(
            client,
            variants,
            SharedMetadata(client, ttl=settings.redis_metadata_ttl),
            RedisLeases(client, variants, lease=settings.redis_lease),
            Popularity(client, flush_interval=settings.redis_flush_interval),
        )

    def start(self) -> None:
        """Begin the timed popularity flushes (needs the running loop)."""
        self.popularity.start()

    async def close(self) -> None:
        """Flush the last counts, finish the background writes, close the pool."""
        await self.popularity.close()
        await self.client.close()
