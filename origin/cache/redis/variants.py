"""Rendered variants in Redis, so a replica serves what another one rendered.

A variant is kept for `variant_ttl` only once it is hot (`hot_sightings` responses within
`hot_window`), so one-off requests do not churn the shared cache; a fresh render is also
published for the lease's length, so replicas waiting on its lease can read it. Sightings
are counted in process and admissions written in the background: the memory-hit path never
waits for Redis. One key holds a variant's header and body together, so a lookup is one
round trip.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import time
from dataclasses import dataclass
from typing import cast

from ...storage import ObjectInfo
from .client import RedisClient

MAX_SIGHTINGS = 100_000
"""In-process sighting records kept at most (oldest dropped first), so a crawler cannot grow them."""
_HEADER_LENGTH = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Stored:
    """A variant as Redis holds it: its bytes and the little the HTTP layer needs to describe them."""

    body: bytes
    content_type: str
    negotiated: bool
    source: ObjectInfo


class SharedVariants:
    def __init__(
        self,
        client: RedisClient,
        *,
        hot_sightings: int,
        hot_window: float,
        max_entry_bytes: int,
        ttl: float,
        lease: float,
    ) -> None:
        self.client = client
        self.hot_sightings = hot_sightings
        self.hot_window = hot_window
        self.max_entry_bytes = max_entry_bytes
        self.ttl_ms = int(ttl * 1000)
        self.lease_ms = int(lease * 1000)
        self._sightings: dict[str, tuple[float, int]] = {}

    def key(self, name: str) -> str:
        return self.client.key("v", name)

    async def get(self, name: str) -> Stored | None:
        async def fetch() -> Stored | None:
            raw = cast(bytes | None, await self.client.raw.get(self.key(name)))  # bytes: the client does not decode
            return decode(raw) if raw is not None else None

        return await self.client.call(fetch, None)

    async def publish(self, name: str, stored: Stored) -> None:
        """Store a fresh render for the lease's length, so replicas waiting on its lease can read it."""
        if len(stored.body) <= self.max_entry_bytes:
            await self.client.write(lambda: self.client.raw.set(self.key(name), encode(stored), px=self.lease_ms))

    def sighted(self, name: str) -> bool:
        """Count one response; True when this one makes the variant hot (once per window).

        Pure bookkeeping in memory: this runs on every hit, so it never talks to Redis.
        """
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
        if len(stored.body) <= self.max_entry_bytes and not self.client.is_open():
            ttl = self.ttl_ms
            self.client.background(
                self.client.write(lambda: self.client.raw.set(self.key(name), encode(stored), px=ttl))
            )


def encode(stored: Stored) -> bytes:
    """A length-prefixed JSON header (type, negotiated, source version), then the body."""
    header = json.dumps(
        {"type": stored.content_type, "negotiated": stored.negotiated, "source": dataclasses.asdict(stored.source)}
    ).encode()
    return _HEADER_LENGTH.pack(len(header)) + header + stored.body


def decode(raw: bytes) -> Stored:
    """The inverse of `encode`; a corrupt entry raises, which the client's call reads as a miss."""
    (length,) = _HEADER_LENGTH.unpack_from(raw)
    start = _HEADER_LENGTH.size
    header = json.loads(raw[start : start + length])
    return Stored(raw[start + length :], header["type"], header["negotiated"], ObjectInfo(**header["source"]))
