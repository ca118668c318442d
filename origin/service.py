"""The GET orchestrator: source version -> variant key -> cache -> render -> admit.

Everything the HTTP layer needs to answer a GET comes from here, and nothing here
knows about HTTP. A transformed image is asked for as one `VariantRequest`; `resolve`
pins it to the source's version, giving the `Variant` every later step takes
(origin/variant.py). Its key is computed before any pixel is touched, so a conditional
request (If-None-Match) or a cache hit never reads the source.

Lookups go memory -> Redis (when configured) -> storage for source versions, and
memory -> Redis -> derived storage (what the worker pre-rendered) -> render for
variants. A memory hit never waits for Redis: it only counts the response in process,
and a variant that has just become hot is written to Redis in the background.

Admission comes before I/O: a render takes its pool slot, then its source bytes from the
source memory budget, and only then reads the source, so a request refused as overloaded
has read nothing. Originals up to `SMALL_ORIGINAL` are read whole (one storage read for
every request that arrives meanwhile, then kept in the LRU); larger ones are streamed a
chunk at a time, only the requested range, each stream holding one chunk of the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from .cache import ByteLRU, MetadataCache
from .cache.redis import SharedCache, Stored
from .derived import DerivedStore
from .errors import ImageTooLarge, InvalidParam, NotFound, OriginError, Overloaded
from .executor import RenderPool
from .formats import MIME, sniff
from .render import RenderConfig, describe, render
from .singleflight import ReplicaFlight, SingleFlight
from .source_memory import SourceMemory
from .storage import ObjectInfo, Reader, Storage
from .variant import Variant, VariantRequest

log = logging.getLogger("origin.service")

SMALL_ORIGINAL = 1024 * 1024
"""Originals up to this size are read whole, coalesced and cached; larger ones are streamed."""
CHUNK = 128 * 1024
"""A streamed original is read and sent this much at a time."""
STREAM_HOLD = 2 * CHUNK
"""What one stream holds: the chunk in hand, and up to about one more in the socket's buffer."""
_SNIFF_BYTES = 4096

Span = tuple[int, int]
"""A byte range (start, end inclusive)."""


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


@dataclass(slots=True)
class Original:
    """An original ready to send: the version served, its type, the span, and its bytes by chunks."""

    source: ObjectInfo
    content_type: str
    span: Span | None
    """The requested range, or None for the whole object."""
    cache: str
    timings: dict[str, float]
    body: bytes | None = None
    """The whole object, when it was small enough to be read whole."""
    reader: Reader | None = None

    @property
    def length(self) -> int:
        return self.span[1] - self.span[0] + 1 if self.span is not None else self.source.size

    async def chunks(self) -> AsyncIterator[bytes | memoryview]:
        """The span's bytes, at most CHUNK at a time, so a slow client never makes us hold more."""
        if self.body is not None:
            start, end = self.span if self.span is not None else (0, len(self.body) - 1)
            view = memoryview(self.body)[start : end + 1]
            for offset in range(0, len(view), CHUNK):
                yield view[offset : offset + CHUNK]
            return
        if self.reader is not None:
            while data := await self.reader.read(CHUNK):
                yield data


class ImageService:
    def __init__(
        self,
        storage: Storage,
        variants: ByteLRU[Image],
        metadata: MetadataCache,
        pool: RenderPool,
        config: RenderConfig,
        max_source_bytes: int,
        memory: SourceMemory,
        streams: int,
        redis: SharedCache | None = None,
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
        self.memory = memory
        """Source bytes in memory at once, across renders and originals."""
        self.streams_limit = streams
        self.streams = asyncio.Semaphore(streams)
        """Streamed originals at once: each holds a file, or an S3 connection, for as long as its client reads."""
        self.sniffed: dict[str, str] = {}
        """Content type by ETag of streamed originals, so a Range not at 0 needs no extra read."""
        self._sniffing: SingleFlight[str] = SingleFlight()
        self.flight: SingleFlight[Image] = SingleFlight()
        self.replicas = ReplicaFlight(redis.leases) if redis is not None else None

    async def source_info(self, key: str) -> ObjectInfo:
        """The source's version; a source too large to hold in memory is refused before it is read."""
        info = self.metadata.get(key)
        if info is None:
            info = await self.redis.metadata.get(key) if self.redis is not None else None
            if info is None:
                info = await self.storage.head(key)
                if self.redis is not None:
                    await self.redis.metadata.put(info)
            self.metadata.put(info)
        if info.size > self.max_source_bytes:
            limit = self.max_source_bytes / (1024 * 1024)
            raise ImageTooLarge(f"the source is larger than {limit:g} MiB")
        return info

    async def invalidate(self, key: str) -> None:
        """Forget the source's version here and in Redis: it was replaced or removed."""
        self.metadata.invalidate(key)
        if self.redis is not None:
            await self.redis.metadata.invalidate(key)

    async def _read(self, key: str, timings: dict[str, float]) -> tuple[bytes, ObjectInfo]:
        started = time.perf_counter()
        data, info = await self.storage.get(key)
        timings["storage"] = timings.get("storage", 0.0) + time.perf_counter() - started
        self.metadata.put(info)
        return data, info

    @contextlib.asynccontextmanager
    async def original(
        self, key: str, span_for: Callable[[ObjectInfo], Span | None], *, body: bool = True
    ) -> AsyncIterator[Original]:
        """The stored bytes, as stored, once they are known to be an image we serve.

        `span_for(version)` says which bytes to send (a Range, checked against that version's
        size and ETag). Small originals come from memory or one coalesced read; large ones
        are opened at the span, so only the span is read. Everything taken (source bytes,
        a stream, a file or connection) is given back when the block ends, on every path.
        `body=False` (HEAD) reads at most the first bytes, to sniff the type.
        """
        info = await self.source_info(key)
        async with contextlib.AsyncExitStack() as stack:
            if info.size <= SMALL_ORIGINAL:
                yield await self._small_original(key, info, span_for, stack)
            else:
                yield await self._streamed_original(key, info, span_for, body, stack)

    async def _small_original(
        self,
        key: str,
        info: ObjectInfo,
        span_for: Callable[[ObjectInfo], Span | None],
        stack: contextlib.AsyncExitStack,
    ) -> Original:
        cache_key = f"original\n{key}\n{info.etag}"
        image = self.variants.get(cache_key)
        if image is None:
            stack.callback((await self.memory.hold(info.size)).release)  # until the response is written
            image, leader = await self.flight.run(cache_key, lambda: self._read_original(key))
            if not leader:
                image = dataclasses.replace(image, cache="coalesced", timings={})
        return Original(
            image.source, image.content_type, span_for(image.source), image.cache, image.timings, image.body
        )

    async def _read_original(self, key: str) -> Image:
        timings: dict[str, float] = {}
        data, info = await self._read(key, timings)
        image = Image(body=data, content_type=MIME[sniff(data)], etag=info.etag, source=info, timings=timings)
        self._admit(f"original\n{key}\n{info.etag}", image)
        return image

    async def _streamed_original(
        self,
        key: str,
        info: ObjectInfo,
        span_for: Callable[[ObjectInfo], Span | None],
        body: bool,
        stack: contextlib.AsyncExitStack,
    ) -> Original:
        await self._take_stream(stack)
        stack.callback((await self.memory.hold(STREAM_HOLD)).release)
        for _ in range(2):
            content_type = await self._content_type(key, info)
            span = span_for(info)
            if not body:
                return Original(info, content_type, span, "miss", {})
            start, end = span if span is not None else (0, None)
            started = time.perf_counter()
            reader = await self.storage.stream(key, start, end)
            stack.push_async_callback(reader.close)
            timings = {"storage": time.perf_counter() - started}
            if reader.info.etag == info.etag:
                return Original(info, content_type, span, "miss", timings, reader=reader)
            # Replaced since its version was read: serve the version we opened, its span recomputed.
            await reader.close()
            self.metadata.put(reader.info)
            info = dataclasses.replace(reader.info, content_type=info.content_type)
        raise Overloaded("the original keeps changing; retry shortly", headers={"Retry-After": "1"})

    async def _content_type(self, key: str, info: ObjectInfo) -> str:
        """Sniffed from the first bytes, once per version (concurrent requests share one read)."""
        known = self.sniffed.get(info.etag)
        if known is not None:
            return known

        async def read_head() -> str:
            reader = await self.storage.stream(key, 0, _SNIFF_BYTES - 1)
            try:
                head = b""
                while len(head) < _SNIFF_BYTES and (data := await reader.read(_SNIFF_BYTES - len(head))):
                    head += data
            finally:
                await reader.close()
            content_type = MIME[sniff(head)]
            self.sniffed[reader.info.etag] = content_type
            if len(self.sniffed) > 4096:
                self.sniffed.pop(next(iter(self.sniffed)))
            return content_type

        return (await self._sniffing.run(info.etag, read_head))[0]

    async def _take_stream(self, stack: contextlib.AsyncExitStack) -> None:
        """One of the `streams` slots, within the source memory's wait; 503 past it."""
        try:
            async with asyncio.timeout(self.memory.wait):
                await self.streams.acquire()
        except TimeoutError:
            raise Overloaded(
                "too many originals are being sent; retry shortly",
                headers={"Retry-After": str(self.memory.retry_after)},
            ) from None
        stack.callback(self.streams.release)

    async def _head_bytes(self, key: str, info: ObjectInfo, stack: contextlib.AsyncExitStack) -> bytes:
        """The first bytes, to sniff a type a Range that starts later does not show."""
        reader = await self.storage.stream(key, 0, _SNIFF_BYTES - 1)
        stack.push_async_callback(reader.close)
        return await reader.read(_SNIFF_BYTES)

    async def resolve(self, asked: VariantRequest) -> Variant:
        """The variant `asked` names at the source's current version, with no source read."""
        info = await self.source_info(asked.key)
        versions = []
        for name, other in asked.spec.storage_keys().items():
            try:
                versions.append(f"{name}={(await self.source_info(other)).etag}")
            except NotFound:
                raise InvalidParam(f"{name}: no image at key {other!r}") from None
        return asked.at(info, "\n".join(versions))

    async def variant(self, variant: Variant) -> Image:
        """The transformed image for a variant `resolve` returned: from memory, Redis, or rendered.

        Concurrent misses for one variant share one render (X-Cache: coalesced for all but
        the leader), in this process and, through Redis, across replicas.
        """
        image = self.variants.get(variant.etag)
        if image is None:
            image, leader = await self.flight.run(variant.etag, lambda: self._fetch(variant))
            if not leader and image.cache == "miss":
                image = dataclasses.replace(image, cache="coalesced")
        if self.redis is not None:
            self.redis.popularity.count(image.etag, variant.request.spec)
            if self.redis.variants.sighted(image.etag):
                self.redis.variants.admit(image.etag, _stored(image))
        return image

    async def _fetch(self, variant: Variant) -> Image:
        """The in-process leader's work: Redis, derived storage, then one render across every replica."""
        redis, replicas, etag = self.redis, self.replicas, variant.etag
        if redis is not None:
            stored = await redis.variants.get(etag)
            if stored is not None:
                return self._keep(etag, stored, "redis")
        found = await self._derived(variant)
        if found is not None:
            return found
        if redis is None or replicas is None:
            return await self._render(variant)

        async def render_and_publish() -> Image:
            image = await self._render(variant)
            await redis.variants.publish(image.etag, _stored(image))
            return image

        result = await replicas.run(etag, render_and_publish)
        return self._keep(etag, result, "coalesced") if isinstance(result, Stored) else result

    async def _derived(self, variant: Variant) -> Image | None:
        """The worker's pre-render, if any: one GET; a failure is logged and read as a miss."""
        key, spec = variant.request.key, variant.request.spec
        if self.derived is None or spec.is_json:
            return None
        started = time.perf_counter()
        try:
            found = await self.derived.get(key, variant.etag)
        except OriginError as exc:
            log.warning("derived storage failed for %r (%s); rendering instead", key, exc.message)
            return None
        if found is None:
            return None
        body, content_type = found
        timings = {"derived": time.perf_counter() - started}
        image = Image(body, content_type, variant.etag, variant.source, spec.negotiates, "derived", timings)
        self._admit(variant.etag, image)
        return image

    async def render(self, variant: Variant) -> Image:
        """A fresh render of a variant `resolve` returned, with no cache consulted: the worker's
        pre-render. Its `etag` names the version actually rendered (see `_render`)."""
        return await self._render(variant)

    def _keep(self, etag: str, stored: Stored, cache: str) -> Image:
        """A variant read from Redis, kept in memory too."""
        image = Image(stored.body, stored.content_type, etag, stored.source, stored.negotiated, cache)
        self._admit(etag, image)
        return image

    async def _render(self, variant: Variant) -> Image:
        """Admission before I/O: the pool slot, then the source bytes, then the read, then the render.

        The slot and the bytes are held until the render's thread has finished (a killed
        render still holds its source), and given back on every other path.
        """
        timings: dict[str, float] = {}
        key, spec, accepts = variant.request.key, variant.request.spec, variant.request.accepts
        others = spec.storage_keys()
        others_size = sum([(await self.source_info(other)).size for other in others.values()])
        with self.pool.admit() as slot:
            slot.keep(await self.memory.hold(variant.source.size + others_size))
            data, fresh = await self._read(key, timings)
            if fresh.etag != variant.source.etag:
                # Replaced between HEAD and GET: key the variant by the version we rendered.
                if self.redis is not None:
                    await self.redis.metadata.put(fresh)
                variant = await self.resolve(variant.request)
            images = {name: (await self._read(other, timings))[0] for name, other in others.items()}
            mark = images.pop("mark", None)
            started = time.perf_counter()
            if spec.is_json:
                body = await slot.run(functools.partial(describe, faces=spec.faces), data, self.config)
                fmt, negotiated = "json", False
            else:
                rendered = await slot.run(
                    functools.partial(render, blend=images.pop("blend", None), images=images),
                    data,
                    spec,
                    accepts,
                    self.config,
                    mark,
                )
                body, fmt = rendered.body, rendered.format
                negotiated = spec.negotiates
        content_type = MIME[fmt]
        timings["render"] = time.perf_counter() - started
        if self.on_render is not None:
            self.on_render(fmt, timings["render"])
        image = Image(body, content_type, variant.etag, variant.source, negotiated=negotiated, timings=timings)
        self._admit(variant.etag, image)
        return image

    def _admit(self, cache_key: str, image: Image) -> None:
        """Cache the image in the form a hit returns, so hits copy nothing."""
        self.variants.put(cache_key, dataclasses.replace(image, cache="memory", timings={}), len(image.body))


def _stored(image: Image) -> Stored:
    return Stored(image.body, image.content_type, image.negotiated, image.source)
