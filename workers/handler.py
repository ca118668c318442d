"""What the worker does with one storage event: invalidate, pre-render, purge.

`build_handler(configs)` is what event sources call: an object with `async handle(event)`
(returns when the event is done or skipped, raises on a failure worth retrying: storage
or Redis trouble, a full render queue) and `async close()`. Its resources (storage,
derived storage, render pool, Redis, CDN clients) open on first use, through the same
wiring as the origin (`origin.app.open_resources`), so the worker renders exactly what
the origin would; each part is handed the resources it uses.

- created/overwritten: skip unless storage holds the event's version; forget the cached
  version; prune the derived variants this version does not want, render those it does
  and lacks (a duplicate event renders nothing); purge the CDN.
- removed: skip if the key exists again; forget it, delete its derived variants, purge.
- a source that is not an image the origin serves (415/422: SVG, bomb, corrupt): logged
  and acked, never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from origin.access import Access
from origin.app import Resources, access_policy, open_resources
from origin.settings import Configs
from origin.storage import ObjectInfo, open_storage
from origin.storage_events import StorageEvent

from . import invalidate
from .prerender import Outcome, Prerender
from .purge import Purges
from .reads import HeldReads

log = logging.getLogger("workers.handler")


def build_handler(configs: Configs, presets: Sequence[str] | None = None) -> Handler:
    """The handler for `configs` (`Settings.configs()`); presets are validated now (PresetError),
    resources open on first use.

    `presets`: render these presets instead of those marked `warm: true` (`image-origin warm`).
    """
    return Handler(configs, access_policy(configs.access, configs.output), presets)


def in_process(configs: Configs, access: Access, resources: Resources) -> Handler:
    """The handler for the origin's own writes when there is no worker (the embedded default:
    `create_app(settings, handler_factory=in_process)`). It shares the app's resources, so
    there is one render pool, and the versions it forgets are the ones the origin caches."""
    return Handler(configs, access, resources=resources)


@dataclasses.dataclass(frozen=True)
class Parts:
    """What an open handler works with."""

    resources: Resources
    reads: HeldReads | None
    """The storage the resources read through, when the handler opened them (None when shared)."""
    prerender: Prerender | None
    """None without derived storage: there is nowhere to keep a pre-render."""
    purges: Purges


class Handler:
    def __init__(
        self,
        configs: Configs,
        access: Access,
        presets: Sequence[str] | None = None,
        *,
        resources: Resources | None = None,
    ) -> None:
        """`resources`: use these open ones (not closed here) instead of opening them."""
        # The worker reads nothing back from the in-memory variant cache: keep none.
        self.configs = configs.replace(cache=dataclasses.replace(configs.cache, bytes=0))
        self.access = access
        self.presets = presets
        self._shared = resources
        for name in presets or ():
            if name not in access.book.presets:
                raise ValueError(f"unknown preset {name!r}")
        self._stack = contextlib.AsyncExitStack()
        self._parts: Parts | None = None
        self._opening = asyncio.Lock()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> Parts:
        """What the handler works with, opened on first use (the resources, unless shared)."""
        async with self._opening:
            if self._parts is None:
                resources, reads = self._shared, None
                if resources is None:
                    storage = await open_storage(self.configs.storage.url, self.configs.storage.timeout)
                    self._stack.push_async_callback(storage.close)
                    reads = HeldReads(storage)  # every read of the source goes through the hold
                    resources = await self._stack.enter_async_context(open_resources(self.configs, storage=reads))
                purges = await Purges.open(self.configs.purge)
                self._stack.push_async_callback(purges.close)
                prerender = None
                if resources.derived is not None:
                    popularity = resources.shared.popularity if resources.shared is not None else None
                    prerender = Prerender(
                        resources.service,
                        resources.derived,
                        self.access,
                        popularity,
                        self.configs.worker.warm_popular,
                        self.presets,
                    )
                self._parts = Parts(resources, reads, prerender, purges)
            return self._parts

    async def handle(self, event: StorageEvent) -> Outcome:
        parts = await self.open()
        storage, forget = parts.resources.storage, parts.resources.service.invalidate
        if event.kind == "removed":
            outcome = await invalidate.removed(storage, forget, parts.resources.derived, event.key)
        else:
            current = await invalidate.created(storage, forget, event.key, event.etag)
            outcome = current if isinstance(current, Outcome) else await self._prerender(parts, current, prune=True)
        if outcome not in (Outcome.STALE, Outcome.GONE):
            parts.purges.schedule(event.key)
        log.info("%s %s (%s): %s", event.kind, event.key, event.source, outcome.value)
        return outcome

    async def backfill(self, info: ObjectInfo) -> Outcome:
        """Pre-render one listed original without pruning or purging (`image-origin warm`)."""
        return await self._prerender(await self.open(), info, prune=False)

    async def _prerender(self, parts: Parts, info: ObjectInfo, *, prune: bool) -> Outcome:
        if parts.prerender is None:
            return Outcome.PRESENT  # no derived storage: nothing to keep there
        with parts.reads.holding(info.key) if parts.reads is not None else contextlib.nullcontext():
            return await parts.prerender.run(info.key, info.etag, prune=prune)

    async def close(self) -> None:
        """Finish the purges in flight, then close every resource."""
        async with self._opening:
            await self._stack.aclose()
            self._parts = None
