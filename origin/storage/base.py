"""The storage protocol the GET path needs: read an object and its version.

Kept this small on purpose: the origin never needs more to serve, and every backend
(local folder, S3, MinIO, Ceph RGW, R2) can answer it in one request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object's version: `etag` changes whenever the bytes may have changed."""

    key: str
    etag: str
    size: int
    last_modified: float
    """Seconds since the epoch."""


class Storage(Protocol):
    async def head(self, key: str) -> ObjectInfo:
        """The object's version; raises NotFound."""
        ...

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        """The object's bytes and the version they belong to; raises NotFound."""
        ...

    async def close(self) -> None: ...
