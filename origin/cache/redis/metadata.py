"""Source versions (key -> ObjectInfo) in Redis, so N replicas ask storage once per TTL rather than N times.

The in-process `MetadataCache` answers first; this is the second look before storage. A
write through the API invalidates the key here too, so every replica sees the new version
at once rather than after `metadata_ttl`. A TTL of 0 turns it off.
"""

from __future__ import annotations

import dataclasses
import json
from typing import cast

from ...storage import ObjectInfo
from .client import RedisClient


class SharedMetadata:
    def __init__(self, client: RedisClient, *, ttl: float) -> None:
        self.client = client
        self.ttl_ms = int(ttl * 1000)

    async def get(self, key: str) -> ObjectInfo | None:
        if self.ttl_ms <= 0:
            return None

        async def fetch() -> ObjectInfo | None:
            raw = cast(bytes | None, await self.client.raw.get(self._key(key)))
            return ObjectInfo(**json.loads(raw)) if raw is not None else None

        return await self.client.call(fetch, None)

    async def put(self, info: ObjectInfo) -> None:
        if self.ttl_ms > 0:
            raw = json.dumps(dataclasses.asdict(info))
            await self.client.write(lambda: self.client.raw.set(self._key(info.key), raw, px=self.ttl_ms))

    async def invalidate(self, key: str) -> None:
        await self.client.write(lambda: self.client.raw.delete(self._key(key)))

    def _key(self, key: str) -> str:
        return self.client.key("meta", key)
