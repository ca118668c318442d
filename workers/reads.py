"""Storage that reads a held source once, however many variants are rendered from it.

The worker renders every pre-rendered variant of an upload through the origin's own
render path, which reads the source for each render. On S3 that would be one GET of
a possibly large original per variant (ten specs in three formats: thirty GETs);
holding the key for the duration of one event makes it one. Only held keys are
remembered, and only while held, so memory is bounded by the events in flight.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from origin.storage import ObjectInfo, Page, Reader, Storage
from origin.storage.base import NewObject


@dataclass
class _Hold:
    users: int = 0
    read: tuple[bytes, ObjectInfo] | None = None


class HeldReads:
    """A Storage that delegates everything, remembering `get` of the keys being held."""

    def __init__(self, storage: Storage) -> None:
        self.inner = storage
        self._held: dict[str, _Hold] = {}

    @contextlib.contextmanager
    def holding(self, key: str) -> Iterator[None]:
        hold = self._held.setdefault(key, _Hold())
        hold.users += 1
        try:
            yield
        finally:
            hold.users -= 1
            if not hold.users:
                del self._held[key]

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        hold = self._held.get(key)
        if hold is None:
            return await self.inner.get(key)
        if hold.read is None:
            hold.read = await self.inner.get(key)
        return hold.read

    async def head(self, key: str) -> ObjectInfo:
        return await self.inner.head(key)

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> Reader:
        return await self.inner.stream(key, start, end)

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> ObjectInfo:
        return await self.inner.put(
            key,
            data,
            content_type=content_type,
            if_none_match=if_none_match,
            if_match=if_match,
        )

    async def delete(self, keys: Sequence[str]) -> None:
        await self.inner.delete(keys)

    async def create_all(self, objects: Sequence[NewObject]) -> list[ObjectInfo]:
        return await self.inner.create_all(objects)

    async def delete_all(self, keys: Sequence[str]) -> None:
        await self.inner.delete_all(keys)

    async def list(self, prefix: str, cursor: str | None, limit: int) -> Page:
        return await self.inner.list(prefix, cursor, limit)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
