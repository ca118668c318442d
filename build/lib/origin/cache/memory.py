"""A byte-bounded LRU of rendered variants: the first cache a request looks in.

Bounded by bytes, not entries, because one 4096 px PNG weighs as much as a thousand
thumbnails. Entries larger than `max_entry` are never admitted, so one huge variant
cannot flush the hot set. Single-threaded by design: only the event loop touches it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class ByteLRU(Generic[V]):
    def __init__(self, capacity: int, max_entry: int) -> None:
        self.capacity = capacity
        self.max_entry = min(max_entry, capacity)
        self.size = 0
        self._items: OrderedDict[str, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: str, value: V, size: int) -> bool:
        """Admit `value`; returns False when it is too large to cache."""
        if size > self.max_entry:
            return False
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self._items[key] = (value, size)
        self.size += size
        while self.size > self.capacity:
            _, (_, evicted) = self._items.popitem(last=False)
            self.size -= evicted
        return True
