"""Derived storage: variants the worker pre-rendered, so a first visitor is not the one who waits.

One object per variant at `{source key}/{variant key}`. The variant key already hashes
the source's ETag, the canonical spec, the negotiated format and the watermark's
version, so a lookup by the key the origin computes can never return the variant of
another version; and every variant of one source shares the prefix `{source key}/`,
so removing a source's variants is one listing and one batch delete.

Only the worker writes here; the origin only reads (one GET per render miss). What the
HTTP layer needs besides the bytes comes from the object itself (its content type, or
its magic bytes on the local folder, which stores no content type) and from the spec
(whether the format was negotiated), so no sidecar has to be kept in step.

The embedded default keeps them in the data folder's `_/derived`: under the reserved
prefix, so they are never listed or served as originals. On S3 there is no default:
point `derived_storage_url` at a second bucket, or at a prefix the bucket's event
notifications leave out, so writing a variant does not notify the worker again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import NotFound, UnsupportedMedia
from .formats import MIME, sniff
from .keys import MAX_KEY_BYTES
from .storage import Storage, open_storage

if TYPE_CHECKING:
    from .settings import StorageConfig

_PAGE = 1000


class DerivedStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @staticmethod
    def path(key: str, variant: str) -> str | None:
        """Where `key`'s variant lives; None when the name would pass the key length limit."""
        path = f"{key}/{variant}"
        return path if len(path.encode()) <= MAX_KEY_BYTES else None

    async def get(self, key: str, variant: str) -> tuple[bytes, str] | None:
        """The variant's bytes and content type; None when absent. Storage failures raise."""
        path = self.path(key, variant)
        if path is None:
            return None
        try:
            data, info = await self.storage.get(path)
        except NotFound:
            return None
        content_type = info.content_type if info.content_type in _SERVED_TYPES else _sniffed(data)
        return (data, content_type) if content_type else None

    async def put(self, key: str, variant: str, body: bytes, content_type: str) -> bool:
        """Store a variant (replacing any: same name, same bytes); False when its name is too long."""
        path = self.path(key, variant)
        if path is None:
            return False
        await self.storage.put(path, body, content_type=content_type)
        return True

    async def variants(self, key: str) -> list[str]:
        """Every variant key stored for `key` (not those of `key/deeper` sources), all pages."""
        prefix = f"{key}/"
        found: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.storage.list(prefix, cursor, _PAGE)
            found += [item.key[len(prefix) :] for item in page.items if "/" not in item.key[len(prefix) :]]
            cursor = page.cursor
            if cursor is None:
                return found

    async def remove(self, key: str, variants: Sequence[str]) -> None:
        if variants:
            await self.storage.delete([f"{key}/{variant}" for variant in variants])

    async def close(self) -> None:
        await self.storage.close()


_SERVED_TYPES = frozenset(MIME.values()) - {MIME["json"]}


def _sniffed(data: bytes) -> str:
    try:
        return MIME[sniff(data)]
    except UnsupportedMedia:
        return ""  # not an image: treated as absent, the origin renders instead


async def open_derived(config: StorageConfig) -> DerivedStore | None:
    """The derived storage `config` resolved (`Settings.configs()`), or None when there is none."""
    url = config.derived_url
    return DerivedStore(await open_storage(url, config.timeout)) if url is not None else None
