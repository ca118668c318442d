"""Render the variants a new source will be asked for into derived storage, before anyone asks.

Which variants: the presets marked `warm: true` (or those `image-origin warm --presets`
names) and the `warm_popular` specs requested most today and yesterday (Redis
popularity counters; none without Redis). A spec with `auto=format` and no `fm` is
rendered once for each format negotiation can pick (AVIF, WebP, legacy), as a browser
of each kind would ask; any other spec once.

Rendering goes through the origin's ImageService: the same variant key, the same
pipeline, the same limits, so the origin finds exactly what the worker stored. It is
idempotent: the source's derived prefix is listed once, and only variants missing from
it are rendered, so a duplicate event renders nothing.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode

from origin.access import Access, authorize, read_query
from origin.cache.redis import Popularity
from origin.derived import DerivedStore
from origin.errors import (
    AnimationTooCostly,
    CorruptImage,
    ImageTooLarge,
    NotFound,
    OriginError,
    RenderTimeout,
    TooManyFrames,
    UnsupportedMedia,
)
from origin.formats import Accepts
from origin.params import parse_query
from origin.service import ImageService
from origin.spec import TransformSpec, canonical
from origin.variant import Variant, VariantRequest

log = logging.getLogger("workers.prerender")

REFUSED = (UnsupportedMedia, ImageTooLarge, TooManyFrames, AnimationTooCostly, CorruptImage)
"""The source is not an image the origin serves (its 415/422): no variant can be made, now or on retry."""
POPULAR_SECONDS = 60.0
"""How long the popular specs are reused before Redis is asked again (a backfill asks once a minute)."""
_NEGOTIATED = (Accepts.AVIF, Accepts.WEBP, Accepts.LEGACY)


class Outcome(enum.Enum):
    """What handling one source came to (for logs, counts and tests)."""

    RENDERED = "rendered"
    """At least one variant was rendered and stored."""
    PRESENT = "present"
    """Every wanted variant was there already (or none is wanted)."""
    REFUSED = "refused"
    """Not an image the origin serves; nothing rendered, and retrying would not help."""
    GONE = "gone"
    """The source no longer exists."""
    STALE = "stale"
    """The event names another version than the stored one; a later event covers it."""
    REMOVED = "removed"
    """The source is gone, and so are its derived variants and cached version."""


class _Stale(Exception):
    """The source changed while its targets were computed."""


class Prerender:
    def __init__(
        self,
        service: ImageService,
        derived: DerivedStore,
        access: Access,
        popularity: Popularity | None,
        popular: int,
        presets: Sequence[str] | None = None,
    ) -> None:
        """`popularity`: the Redis counters the `popular` most requested specs come from (None: no Redis).
        `presets`: names to render instead of those marked `warm: true` (KeyError for an unknown one)."""
        self.service = service
        self.derived = derived
        self.access = access
        self.popularity = popularity
        self.popular = popular
        names = [p.name for p in access.book.warm] if presets is None else list(presets)
        self.presets = [spec for spec in (preset_spec(access, name) for name in names) if _image(spec)]
        self._popular: tuple[float, list[TransformSpec]] = (float("-inf"), [])

    async def run(self, key: str, etag: str, *, prune: bool) -> Outcome:
        """Render the wanted variants of version `etag` that derived storage lacks.

        `prune`: also remove the stored variants that are not wanted for this version
        (those of older versions, which no request can reach any more, and specs no
        longer wanted). Storage failures raise: the event is retried.
        """
        present = set(await self.derived.variants(key))
        try:
            targets: list[Variant] | None = await self.targets(key, etag)
        except NotFound:
            return Outcome.GONE
        except _Stale:
            return Outcome.STALE
        except REFUSED as exc:
            log.warning("%s: not an image the origin serves (%s); nothing to pre-render", key, exc.message)
            targets = None
        if prune:
            wanted = {target.etag for target in targets or ()}
            await self.derived.remove(key, sorted(present - wanted))
        if targets is None:
            return Outcome.REFUSED
        if targets and self.derived.path(key, targets[0].etag) is None:
            log.info("%s: the key is too long to name its variants in derived storage; left to the origin", key)
            return Outcome.PRESENT
        missing = [target for target in targets if target.etag not in present]
        if not missing:
            return Outcome.PRESENT
        for target in missing:
            try:
                await self._render(target)
            except NotFound:
                return Outcome.GONE  # removed meanwhile: its removed event deletes what was stored
            except REFUSED as exc:
                log.warning("%s: not an image the origin serves (%s); nothing to pre-render", key, exc.message)
                return Outcome.REFUSED
        return Outcome.RENDERED

    async def targets(self, key: str, etag: str) -> list[Variant]:
        """Every variant (spec, format) wanted for version `etag`, keyed as the origin keys them."""
        targets: dict[str, Variant] = {}
        for spec in self.presets + await self.popular_specs():
            for accepts in _NEGOTIATED if spec.negotiates else (Accepts.LEGACY,):
                try:
                    variant = await self.service.resolve(VariantRequest(key, spec, accepts))
                except OriginError as exc:
                    if not _skippable(exc):
                        raise
                    log.warning("%s: skipping %s (%s)", key, canonical(spec), exc.message)  # e.g. a missing watermark
                    break
                if variant.source.etag != etag:
                    raise _Stale
                targets.setdefault(variant.etag, variant)
        return list(targets.values())

    async def popular_specs(self) -> list[TransformSpec]:
        """The most requested specs (reused for POPULAR_SECONDS); unparsable or non-image ones left out."""
        if self.popularity is None or self.popular <= 0:
            return []
        fetched, specs = self._popular
        if time.monotonic() - fetched < POPULAR_SECONDS:
            return specs
        specs = []
        for text in await self.popularity.popular(self.popular):
            try:
                spec = parse_query(parse_qsl(text, keep_blank_values=True), self.access.limits)
            except OriginError:
                log.info("popular spec %r no longer parses; skipped", text)
                continue
            if _image(spec):
                specs.append(spec)
        self._popular = (time.monotonic(), specs)
        return specs

    async def _render(self, target: Variant) -> None:
        """Render and store one variant. If the source was replaced since the targets were
        computed, the service keys the render by the version it read, so what is stored is
        still named right (and the newer version's event prunes it)."""
        try:
            image = await self.service.render(target)
        except OriginError as exc:
            if not _skippable(exc):
                raise
            log.warning("%s: skipping %s (%s)", target.request.key, canonical(target.request.spec), exc.message)
            return
        await self.derived.put(target.request.key, image.etag, image.body, image.content_type)


def _skippable(exc: OriginError) -> bool:
    """A problem with one spec, not with the source or the services: skip that spec and go on.

    A refused source and a missing one are the caller's to handle; a storage failure or a
    full render queue (5xx) is retried with the whole event. A render that ran past its
    deadline would do so again: the origin is left to try it on demand.
    """
    if isinstance(exc, (NotFound, *REFUSED)):
        return False
    return exc.status < 500 or isinstance(exc, RenderTimeout)


def _image(spec: TransformSpec) -> bool:
    """Specs whose answer is a rendered image (not the original's bytes, not JSON metadata)."""
    return spec.needs_render and not spec.is_json


def preset_spec(access: Access, name: str) -> TransformSpec:
    """The spec a plain `?preset=name` request gets, width ladder included (KeyError if unknown)."""
    if name not in access.book.presets:
        raise KeyError(name)
    asked = read_query(urlencode({"preset": name}), access)
    if access.signer.required:
        return asked.spec  # every URL is signed, and signed URLs are served as asked
    return authorize(asked, access, key="", raw_path="", now=0.0)  # unsigned: only the ladder applies
