"""The storage protocol: what the origin and the management API need from a backend.

Kept small on purpose: each method is one request on S3 (HEAD, GET, conditional PUT,
DeleteObjects, ListObjectsV2), so every backend (local folder, AWS S3, MinIO, Ceph RGW,
R2) can answer it the same way. Conditions are the backend's job, never a read-then-
write in the caller, so two concurrent creates of one key cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import StorageError


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object's version: `etag` changes whenever the bytes may have changed."""

    key: str
    etag: str
    size: int
    last_modified: float
    """Seconds since the epoch."""
    content_type: str = ""
    """As sniffed at upload ("" when the backend cannot say without reading the object)."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing, in key order; `cursor` resumes after the last item (None: done)."""

    items: list[ObjectInfo]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class NewObject:
    """One object of a batch create: its bytes and what the upload check found."""

    key: str
    data: bytes
    content_type: str


class BatchRefused(Exception):
    """A batch was refused as a whole and nothing of it applied; `keys` names every key in the way."""

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__(", ".join(keys))
        self.keys = list(keys)


class KeysTaken(BatchRefused):
    """Some keys of a batch create exist."""


class KeysAbsent(BatchRefused):
    """Some keys of a batch delete do not exist."""


class StorageUnwritable(StorageError):
    """The storage refuses writes (a read-only or full file system): 507, naming the cause."""

    status = 507
    code = "storage_unwritable"


class StorageUnusable(Exception):
    """The storage cannot be opened as configured (a read-only data folder): refused at start."""


class Reader(Protocol):
    """An open object: the version being read, and its bytes from `start` to `end`, a chunk at a time.

    Reading a chunk at a time lets a large original go to a slow client without ever being
    held whole (a file descriptor on the local folder, a streamed GetObject body on S3).
    `close` must be called on every path: on S3 it gives the connection back.
    """

    info: ObjectInfo

    async def read(self, size: int) -> bytes:
        """Up to `size` bytes; b"" once the span (or the object) has been read."""
        ...

    async def close(self) -> None: ...


class Storage(Protocol):
    async def head(self, key: str) -> ObjectInfo:
        """The object's version; raises NotFound."""
        ...

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        """The object's bytes and the version they belong to; raises NotFound."""
        ...

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> Reader:
        """The object opened for reading bytes `start`..`end` (inclusive; None: to its end).

        Only that span is read from storage (a seek; a ranged GetObject). Raises NotFound,
        and RangeNotSatisfiable when `start` lies past the object's end.
        """
        ...

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> ObjectInfo:
        """Store `data` atomically: readers see the old version or the new one, never a part.

        `if_none_match`: create only (AlreadyExists when the key exists). `if_match`:
        replace only that version (PreconditionFailed otherwise, including when absent).
        Neither: create or replace. Raises KeyConflict when the key cannot coexist with
        another key (an object where a prefix is needed, on the local folder).
        """
        ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove every key (one DeleteObjects request on S3); absent keys are ignored."""
        ...

    async def create_all(self, objects: Sequence[NewObject]) -> list[ObjectInfo]:
        """Create every object, or none: KeysTaken naming each key that exists.

        On the local folder this also holds across a crash (see storage/staging.py); on
        S3, which has no multi-object transaction, see the README for what holds.
        """
        ...

    async def delete_all(self, keys: Sequence[str]) -> None:
        """Remove every key, or none: KeysAbsent naming each key that does not exist.

        Of concurrent removals of one key, one succeeds and the others are KeysAbsent
        (on the local folder; on S3 see the README).
        """
        ...

    async def list(self, prefix: str, cursor: str | None, limit: int) -> Page:
        """Up to `limit` objects under `prefix` in key (UTF-8 byte) order, after `cursor`.

        Never lists the reserved `_/` prefix. Raises InvalidCursor for a cursor this
        backend did not issue for this prefix.
        """
        ...

    async def ping(self) -> None:
        """One cheap request that raises when the backend cannot serve (the readiness check)."""
        ...

    async def close(self) -> None: ...
