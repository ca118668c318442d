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
from typing import TYPE_CHECKING

from .client import RedisClient, connect
from .leases import RedisLeases
from .metadata import SharedMetadata
from .popularity import Popularity
from .variants import SharedVariants, Stored

if TYPE_CHECKING:
    from ...settings import RedisConfig

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
    def open(cls, config: RedisConfig) -> SharedCache:
        """The shared cache `config` describes (there is none without `redis_url`: one machine)."""
        client = RedisClient(
            connect(config.url, config.timeout),
            prefix=config.prefix,
            timeout=config.timeout,
            breaker_seconds=config.breaker_seconds,
        )
        variants = SharedVariants(
            client,
            hot_sightings=config.hot_sightings,
            hot_window=config.hot_window,
            max_entry_bytes=config.max_entry_bytes,
            ttl=config.variant_ttl,
            lease=config.lease,
        )
        return cls(
            client,
            variants,
            SharedMetadata(client, ttl=config.metadata_ttl),
            RedisLeases(client, variants, lease=config.lease),
            Popularity(client, flush_interval=config.flush_interval),
        )

    def start(self) -> None:
        """Begin the timed popularity flushes (needs the running loop)."""
        self.popularity.start()

    async def close(self) -> None:
        """Flush the last counts, finish the background writes, close the pool."""
        await self.popularity.close()
        await self.client.close()
