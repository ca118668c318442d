"""A short-lived cache of source versions (key -> ObjectInfo).

The variant key needs the source's ETag, and asking storage on every hit would cost
a round trip (a stat, or an S3 HEAD) on the hottest path. Entries live `ttl` seconds;
writes through the API invalidate them at once, and out-of-band changes are seen
within `ttl`.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from ..storage import ObjectInfo


class MetadataCache:
    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[float, ObjectInfo]] = OrderedDict()

    def get(self, key: str) -> ObjectInfo | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, info = item
        if time.monotonic() >= expires:
            del self._items[key]
            return None
        return info

    def put(self, info: ObjectInfo) -> None:
        if self.ttl <= 0:
            return
        self._items.pop(info.key, None)
        self._items[info.key] = (time.monotonic() + self.ttl, info)
        if len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def invalidate(self, key: str) -> None:
        self._items.pop(key, None)
