"""Writes through the management API: validate every file, then store them all or none;
remove a batch of keys all or none.

Nothing reaches storage before every file of a request has passed: sniffed from its
bytes (415), scanned for markup (415), within the header limits (422) and decodable to
the last pixel (422). Storing is create-only (or conditional) in the backend itself, so
two concurrent creates of one key cannot both win; a batch is stored or removed all or
nothing by the backend (create_all, delete_all), which on the local folder holds even
across a crash. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from .errors import AlreadyExists, EmptyBody, NotFound, OriginError
from .executor import RenderPool
from .formats import MIME, sniff
from .render import RenderConfig, SourceInfo
from .render.validate import validate
from .storage import ObjectInfo, Storage
from .storage.base import KeysAbsent, KeysTaken, NewObject

Invalidate = Callable[[str], Awaitable[None]]
"""Forget a key's cached version everywhere (ImageService.invalidate)."""


@dataclass(frozen=True, slots=True)
class Upload:
    """A validated file and the key it goes to."""

    key: str
    data: bytes
    info: SourceInfo


@dataclass(frozen=True, slots=True)
class Stored:
    """What a client is told about a stored image (the stored version and the probed size)."""

    object: ObjectInfo
    info: SourceInfo


class _BatchError(OriginError):
    """A batch failed on some of its keys: the error names them all (JSON `keys`), so a client
    can act on each. Mixed in before the error type that gives the status."""

    what = ""

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__(f"{self.what}: " + ", ".join(repr(key) for key in keys))
        self.keys = list(keys)

    def details(self) -> dict[str, object]:
        return {"keys": self.keys}


class KeysExist(_BatchError, AlreadyExists):
    """Some keys of a batch exist already."""

    what = "already exists"


class KeysMissing(_BatchError, NotFound):
    """Some keys of a removal do not exist."""

    what = "no image at"


async def check_upload(data: bytes, pool: RenderPool, config: RenderConfig) -> SourceInfo:
    """400 for an empty file, 415 from the magic bytes at once, then the full check in the pool."""
    if not data:
        raise EmptyBody("the file is empty")
    sniff(data)  # not an image at all: refused before it takes a render slot
    return await pool.run(validate, data, config)


async def refuse_existing(storage: Storage, keys: Sequence[str]) -> None:
    """409 naming every key that exists already: the cheap check before anything is decoded.

    Only a courtesy that names them all: the create-only write is what decides a race.
    """
    found = await asyncio.gather(*(_exists(storage, key) for key in keys))
    existing = [key for key, present in zip(keys, found, strict=True) if present]
    if existing:
        raise KeysExist(existing)


async def remove_all(storage: Storage, invalidate: Invalidate, keys: Sequence[str]) -> None:
    """Remove every key, or none: 404 naming each missing one, and then nothing is removed.

    Storage decides (storage.delete_all): of concurrent removals of one key, one succeeds
    and the others are told it is missing. The variant key includes the source's ETag,
    so once the version is forgotten here no cached variant of a removed image can be
    reached.
    """
    try:
        await storage.delete_all(keys)
    except KeysAbsent as exc:
        raise KeysMissing(exc.keys) from None
    finally:
        await _forget(invalidate, keys)


async def _forget(invalidate: Invalidate, keys: Sequence[str]) -> None:
    await asyncio.gather(*(invalidate(key) for key in keys))


async def _exists(storage: Storage, key: str) -> bool:
    try:
        await storage.head(key)
    except NotFound:
        return False
    return True


async def store_batch(storage: Storage, invalidate: Invalidate, uploads: Sequence[Upload]) -> list[Stored]:
    """Create every upload (create-only), or none (storage.create_all decides, even across a crash).

    A key another request created meanwhile makes the batch a 409 naming it, like the
    check before.
    """
    objects = [NewObject(upload.key, upload.data, MIME[upload.info.format]) for upload in uploads]
    try:
        stored = await storage.create_all(objects)
    except KeysTaken as exc:
        raise KeysExist(exc.keys) from None
    finally:
        await _forget(invalidate, [upload.key for upload in uploads])
    return [Stored(info, upload.info) for info, upload in zip(stored, uploads, strict=True)]


async def store_one(storage: Storage, invalidate: Invalidate, upload: Upload, *, if_match: str | None) -> Stored:
    """Create (`if_match` None: AlreadyExists when the key exists) or replace that version only."""
    try:
        info = await _put(storage, upload, create_only=if_match is None, if_match=if_match)
    finally:
        await invalidate(upload.key)
    return Stored(info, upload.info)


async def _put(storage: Storage, upload: Upload, *, create_only: bool, if_match: str | None = None) -> ObjectInfo:
    return await storage.put(
        upload.key,
        upload.data,
        content_type=MIME[upload.info.format],  # sniffed: the declared type is never trusted
        if_none_match=create_only,
        if_match=if_match,
    )
