"""The GET orchestrator: source version -> variant key -> cache -> render -> admit.

Everything the HTTP layer needs to answer a GET comes from here, and nothing here
knows about HTTP. The variant key is computed before any pixel is touched, so a
conditional request (If-None-Match) or a cache hit never reads the source.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
from dataclasses import dataclass, field

from .cache import ByteLRU, MetadataCache
from .errors import ImageTooLarge, InvalidParam, NotFound
from .executor import RenderPool
from .formats import MIME, Accepts, sniff
from .render import RenderConfig, describe, render
from .singleflight import SingleFlight
from .spec import TransformSpec, canonical
from .storage import ObjectInfo, Storage

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
    ) -> None:
        self.storage = storage
        self.variants = variants
        self.metadata = metadata
        self.pool = pool
        self.config = config
        self.max_source_bytes = max_source_bytes
        self.flight: SingleFlight[Image] = SingleFlight()

    async def source_info(self, key: str) -> ObjectInfo:
        """The source's version; a source too large to hold in memory is refused before it is read."""
        info = self.metadata.get(key)
        if info is None:
            info = await self.storage.head(key)
            self.metadata.put(info)
        if info.size > self.max_source_bytes:
            limit = self.max_source_bytes / (1024 * 1024)
            raise ImageTooLarge(f"the source is larger than {limit:g} MiB")
        return info

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
        image = Image(
            body=data, content_type=MIME[sniff(data)], etag=info.etag, source=info, timings=timings
        )
        self._admit(f"original\n{key}\n{info.etag}", image)
        return image

    async def variant_etag(self, key: str, spec: TransformSpec, accepts: Accepts) -> tuple[str, ObjectInfo]:
        """The variant key (the response's ETag) and the source version, with no source read."""
        info = await self.source_info(key)
        mark_etag = ""
        if spec.mark is not None:
            try:
                mark_etag = (await self.source_info(spec.mark)).etag
            except NotFound:
                raise InvalidParam(f"mark: no image at key {spec.mark!r}") from None
        return variant_key(key, info.etag, spec, accepts, mark_etag), info

    async def variant(self, key: str, spec: TransformSpec, accepts: Accepts, etag: str, info: ObjectInfo) -> Image:
        """The transformed image for the version `variant_etag` returned: from memory, or rendered.

        Concurrent misses for one variant share one render (X-Cache: coalesced for all but
        the leader).
        """
        cached = self.variants.get(etag)
        if cached is not None:
            return cached
        image, leader = await self.flight.run(etag, lambda: self._render(key, spec, accepts, etag, info))
        return image if leader else dataclasses.replace(image, cache="coalesced")

    async def _render(self, key: str, spec: TransformSpec, accepts: Accepts, etag: str, info: ObjectInfo) -> Image:
        timings: dict[str, float] = {}
        data, fresh = await self._read(key, timings)
        if fresh.etag != info.etag:
            # Replaced between HEAD and GET: key the variant by the version we rendered.
            etag, info = await self.variant_etag(key, spec, accepts)
        mark = (await self._read(spec.mark, timings))[0] if spec.mark is not None else None
        started = time.perf_counter()
        if spec.is_json:
            body = await self.pool.run(describe, data, self.config)
            content_type, negotiated = MIME["json"], False
        else:
            rendered = await self.pool.run(render, data, spec, accepts, self.config, mark)
            body, content_type = rendered.body, MIME[rendered.format]
            negotiated = spec.fm is None and "format" in spec.auto
        timings["render"] = time.perf_counter() - started
        image = Image(body, content_type, etag, info, negotiated=negotiated, timings=timings)
        self._admit(etag, image)
        return image

    def _admit(self, cache_key: str, image: Image) -> None:
        """Cache the image in the form a hit returns, so hits copy nothing."""
        self.variants.put(cache_key, dataclasses.replace(image, cache="memory", timings={}), len(image.body))


@functools.lru_cache(maxsize=65536)
def variant_key(key: str, source_etag: str, spec: TransformSpec, accepts: Accepts, mark_etag: str = "") -> str:
    """hash(pipeline version, key, source version, canonical spec, negotiated format, mark version).

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
