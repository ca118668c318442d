"""Forget what the origin knows of a source that changed or went: its version and derived variants.

What there is to forget, and where:
- the source's version (ETag), cached in each origin's memory for `metadata_ttl` and in
  Redis for `redis_metadata_ttl`: removed from Redis (and this process) here, so every
  replica asks storage again at its next memory miss;
- cached variants, in memory and in Redis: nothing to do. Their keys hash the source's
  ETag, so once the new version is known no request can reach an old one; they age out;
- derived variants: the only copies that outlive a TTL, so they are deleted (on removal
  here; on overwrite the pre-render prunes those the new version does not want).

Events are at-least-once and unordered, so each change is checked against storage
first: an event whose version is not the stored one is stale and does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from origin.derived import DerivedStore
from origin.errors import NotFound
from origin.storage import ObjectInfo, Storage

from .prerender import Outcome

log = logging.getLogger("workers.invalidate")
Forget = Callable[[str], Awaitable[None]]
"""Forget a key's cached version, here and in Redis (the origin's `ImageService.invalidate`)."""


async def created(storage: Storage, forget: Forget, key: str, etag: str | None) -> ObjectInfo | Outcome:
    """The stored version if the event names it (its cached version now forgotten); else GONE or STALE.

    `etag` None (the source sent none) matches any version.
    """
    try:
        info = await storage.head(key)
    except NotFound:
        log.info("%s: created, then removed before we got to it; skipped", key)
        return Outcome.GONE
    if etag is not None and info.etag != etag:
        log.info("%s: the event names version %s, storage holds %s; skipped", key, etag, info.etag)
        return Outcome.STALE
    await forget(key)
    return info


async def removed(storage: Storage, forget: Forget, derived: DerivedStore | None, key: str) -> Outcome:
    """Forget a removed source and delete its derived variants; STALE if it exists again."""
    try:
        await storage.head(key)
    except NotFound:
        pass
    else:
        log.info("%s: removed, but stored again since; skipped (its created event covers it)", key)
        return Outcome.STALE
    await forget(key)
    if derived is not None:
        await derived.remove(key, await derived.variants(key))
    return Outcome.REMOVED
