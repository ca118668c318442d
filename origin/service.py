"""The GET orchestrator: source version -> variant key -> cache -> render -> admit.

Everything the HTTP layer needs to answer a GET comes from here, and nothing here
knows about HTTP. The variant key is computed before any pixel is touched, so a
conditional request (If-None-Match) or a cache hit never reads the source.

Lookups go memory -> Redis (when configured) -> storage for source versions, and
memory -> Redis -> derived storage (what the worker pre-rendered) -> render for
variants. A memory hit never waits for Redis: it only counts the response in process,
and a variant that has just become hot is written to Redis in the background.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .cache import ByteLRU, MetadataCache
from .cache.redis import RedisCache, Stored
from .derived import DerivedStore
from .errors import ImageTooLarge, InvalidParam, NotFound, OriginError
from .executor import RenderPool
from .formats import MIME, Accepts, sniff
from .render import RenderConfig, describe, render
from .singleflight import ReplicaFlight, SingleFlight
from .spec import TransformSpec, canonical
from .storage import ObjectInfo, Storage

log = logging.getLogger("origin.service")

PIPELINE_VERSION = "1"
"""Bump when rendering changes what bytes a spec produces, so old variants are not served."""


@dataclass(frozen=True, slots=True)
class Image:
    """A response body with what the HTTP layer needs to describe it."""

    body: bytes
    content_type: str
    etag: str
    source: ObjectInfo
    negotiated: bool = False
    cache: str = "miss"
    timings: dict[str, float] = field(default_factory=dict)


class ImageService:
    def __init__(
        self,
        storage: Storage,
        variants: ByteLRU[Image],
        metadata: MetadataCache,
        pool: RenderPool,
        config: RenderConfig,
        max_source_bytes: int,
        redis: RedisCache | None = None,
        on_render: Callable[[str, float], None] | None = None,
        derived: DerivedStore | None = None,
    ) -> None:
        self.storage = storage
        self.variants = variants
        self.metadata = metadata
        self.pool = pool
        self.config = config
        self.max_source_bytes = max_source_bytes
        self.redis = redis
        self.on_render = on_render
        """Told (output format, seconds) after each render: the render-time histogram."""
        self.derived = derived
        self.flight: SingleFlight[Image] = SingleFlight()
        self.replicas = ReplicaFlight(redis) if redis is not None else None

    async def source_info(self, key: str) -> ObjectInfo:
        """The source's version; a source too large to hold in memory is refused before it is read."""
        info = self.metadata.get(key)
        if info is None:
            info = await self.redis.get_info(key) if self.redis is not None else None
            if info is None:
                info = await self.storage.head(key)
                if self.redis is not None:
                    await self.redis.put_info(info)
            self.metadata.put(info)
        if info.size > self.max_source_bytes:
            limit = self.max_source_bytes / (1024 * 1024)
            raise ImageTooLarge(f"the source is larger than {limit:g} MiB")
        return info

    async def invalidate(self, key: str) -> None:
        """Forget the source's version here and in Redis: it was replaced or removed."""
        self.metadata.invalidate(key)
        if self.redis is not None:
            await self.redis.invalidate(key)

    async def _read(self, key: str, timings: dict[str, float]) -> tuple[bytes, ObjectInfo]:
        started = time.perf_counter()
        data, info = await self.storage.get(key)
        timings["storage"] = timings.get("storage", 0.0) + time.perf_counter() - started
        self.metadata.put(info)
        return data, info

    async def original(self, key: str) -> Image:
        """The stored bytes, as stored, once they are known to be an image we serve."""
        info = await self.source_info(key)
        cache_key = f"original\n{key}\n{info.etag}"
        cached = self.variants.get(cache_key)
        if cached is not None:
            return cached
        timings: dict[str, float] = {}
        data, info = await self._read(key, timings)
        image = Image(body=data, content_type=MIME[sniff(data)], etag=info.etag, source=info, timings=timings)
        self._admit(f"original\n{key}\n{info.etag}", image)
        return image

    async def variant_etag(self, key: str, spec: TransformSpec, accepts: Accepts) -> tuple[str, ObjectInfo]:
        """The variant key (the response's ETag) and the source version, with no source read."""
        info = await self.source_info(key)
        versions = []
        for name, other in (("mark", spec.mark), ("blend", spec.blend)):
            if other is not None:
                try:
                    versions.append((await self.source_info(other)).etag)
                except NotFound:
                    raise InvalidParam(f"{name}: no image at key {other!r}") from None
        return variant_key(key, info.etag, spec, accepts, "\n".join(versions)), info

    async def variant(self, key: str, spec: TransformSpec, accepts: Accepts, etag: str, info: ObjectInfo) -> Image:
        """The transformed image for the version `variant_etag` returned: from memory, Redis, or rendered.

        Concurrent misses for one variant share one render (X-Cache: coalesced for all but
        the leader), in this process and, through Redis, across replicas.
        """
        image = self.variants.get(etag)
        if image is None:
            image, leader = await self.flight.run(etag, lambda: self._fetch(key, spec, accepts, etag, info))
            if not leader and image.cache == "miss":
                image = dataclasses.replace(image, cache="coalesced")
        if self.redis is not None and self.redis.served(image.etag, spec):
            self.redis.admit(image.etag, _stored(image))
        return image

    async def _fetch(self, key: str, spec: TransformSpec, accepts: Accepts, etag: str, info: ObjectInfo) -> Image:
        """The in-process leader's work: Redis, derived storage, then one render across every replica."""
        redis, replicas = self.redis, self.replicas
        if redis is not None:
            stored = await redis.get_variant(etag)
            if stored is not None:
                return self._keep(etag, stored, "redis")
        found = await self._derived(key, spec, etag, info)
        if found is not None:
            return found
        if redis is None or replicas is None:
            return await self._render(key, spec, accepts, etag, info)

        async def render_and_publish() -> Image:
            image = await self._render(key, spec, accepts, etag, info)
            await redis.publish(image.etag, _stored(image))
            return image

        result = await replicas.run(etag, render_and_publish)
        return self._keep(etag, result, "coalesced") if isinstance(result, Stored) else result

    async def _derived(self, key: str, spec: TransformSpec, etag: str, info: ObjectInfo) -> Image | None:
        """The worker's pre-render, if any: one GET; a failure is logged and read as a miss."""
        if self.derived is None or spec.is_json:
            return None
        started = time.perf_counter()
        try:
            found = await self.derived.get(key, etag)
        except OriginError as exc:
            log.warning("derived storage failed for %r (%s); rendering instead", key, exc.message)
            return None
        if found is None:
            return None
        body, content_type = found
        negotiated = spec.fm is None and "format" in spec.auto
        image = Image(body, content_type, etag, info, negotiated, "derived", {"derived": time.perf_counter() - started})
        self._admit(etag, image)
        return image

    async def render(self, key: str, spec: TransformSpec, accepts: Accepts, etag: str, info: ObjectInfo) -> Image:
        """A fresh render of the version `variant_etag` returned, with no cache consulted: the
        worker's pre-render. Its `etag` names the version actually rendered (see `_render`)."""
        return await self._render(key, spec, accepts, etag, info)

    def _keep(self, etag: str, stored: Stored, cache: str) -> Image:
        """A variant read from Redis, kept in memory too."""
        image = Image(stored.body, stored.content_type, etag, stored.source, stored.negotiated, cache)
        self._admit(etag, image)
        return image

    async def _render(self, key: str, spec: TransformSpec, accepts: Accepts, etag: str, info: ObjectInfo) -> Image:
        timings: dict[str, float] = {}
        data, fresh = await self._read(key, timings)
        if fresh.etag != info.etag:
            # Replaced between HEAD and GET: key the variant by the version we rendered.
            if self.redis is not None:
                await self.redis.put_info(fresh)
            etag, info = await self.variant_etag(key, spec, accepts)
        mark = (await self._read(spec.mark, timings))[0] if spec.mark is not None else None
        blend = (await self._read(spec.blend, timings))[0] if spec.blend is not None else None
        started = time.perf_counter()
        if spec.is_json:
            body = await self.pool.run(functools.partial(describe, faces=spec.faces), data, self.config)
            fmt, negotiated = "json", False
        else:
            rendered = await self.pool.run(functools.partial(render, blend=blend), data, spec, accepts, self.config, mark)
            body, fmt = rendered.body, rendered.format
            negotiated = spec.fm is None and "format" in spec.auto
        content_type = MIME[fmt]
        timings["render"] = time.perf_counter() - started
        if self.on_render is not None:
            self.on_render(fmt, timings["render"])
        image = Image(body, content_type, etag, info, negotiated=negotiated, timings=timings)
        self._admit(etag, image)
        return image

    def _admit(self, cache_key: str, image: Image) -> None:
        """Cache the image in the form a hit returns, so hits copy nothing."""
        self.variants.put(cache_key, dataclasses.replace(image, cache="memory", timings={}), len(image.body))


def _stored(image: Image) -> Stored:
    return Stored(image.body, image.content_type, image.negotiated, image.source)


@functools.lru_cache(maxsize=65536)
def variant_key(key: str, source_etag: str, spec: TransformSpec, accepts: Accepts, mark_etag: str = "") -> str:
    """hash(pipeline version, key, source version, canonical spec, negotiated format, mark and blend versions).

    The Accept header counts only under `auto=format` without an explicit `fm`, and only
    reduced to three values, so one spec has at most three variants.
    """
    negotiated = accepts.value if spec.fm is None and "format" in spec.auto else "-"
    material = "\n".join((PIPELINE_VERSION, key, source_etag, _variant_text(spec), negotiated, mark_etag))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=4096)
def _variant_text(spec: TransformSpec) -> str:
    """The canonical spec without `dl`, which changes headers but not bytes (memoised: hot path)."""
    return canonical(dataclasses.replace(spec, dl=None))
