"""create_app(settings): wire storage, caches, render pool and routes; own their lifetimes."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from .access import Access
from .cache import ByteLRU, MetadataCache
from .cache.redis import SharedCache
from .derived import DerivedStore, open_derived
from .events import HandlerFactory, open_emitter
from .executor import RenderPool
from .http.appkeys import (
    ACCESS,
    EMITTER,
    METRICS,
    POLICY,
    POOL,
    READY_TIMEOUT,
    RENDER_CONFIG,
    SEND_TIMEOUT,
    SERVICE,
    SHARED,
    STORAGE,
)
from .http.bodies import FORM_OVERHEAD
from .http.images import ResponsePolicy
from .http.jsonapp import json_app
from .http.manage import managing, setup_management
from .http.metrics import Site, count_requests, setup_metrics
from .http.openapi import setup_openapi
from .http.playground import setup_playground
from .http.routes import setup_routes
from .logs import ACCESS_LOGGER, AccessLog, capture_libvips_warnings
from .params import OutputLimits
from .presets import PresetError, load_presets
from .render import RenderConfig, harden
from .service import Image, ImageService
from .settings import AccessConfig, Configs, Settings
from .signing import Signer
from .source_memory import SourceMemory
from .storage import Storage, open_storage

log = logging.getLogger("origin")


def access_policy(config: AccessConfig, limits: OutputLimits) -> Access:
    """Presets (validated now: a bad one raises PresetError) and signing keys."""
    if config.presets_named and not config.presets.exists():
        raise PresetError(f"{config.presets}: no such file")
    return Access(
        book=load_presets(config.presets, limits),
        signer=Signer(
            imgix_tokens=config.imgix_tokens,
            hmac_keys=tuple(key.encode() for key in config.signing_keys),
            required=config.require_signature,
        ),
        limits=limits,
    )


def create_app(settings: Settings, *, handler_factory: HandlerFactory | None = None) -> web.Application:
    """The origin as an aiohttp application. libvips is locked down before anything else.

    The settings become each concern's small config here, once (`Settings.configs()`); every
    part of the app is handed only its own.

    `handler_factory` makes the in-process event handler used when there is no Redis (and so
    no worker): without one, the origin's own uploads and deletes are not pre-rendered.
    Every resource opens and closes in one cleanup context (`_lifetime`), in an order it states.
    """
    harden()
    capture_libvips_warnings()
    configs = settings.configs()
    responses = configs.responses
    app = json_app(
        error_cache_control=responses.error_cache_control,
        cors_origin=responses.cors_origin,
        outer=[count_requests],
        # Browsers and CDNs send long Accept and Cookie headers; aiohttp's 8 KiB default would
        # answer them with its own plain-text 400 before our JSON errors could.
        # The access log (off by default) is set here, not by whoever runs the app, so the
        # CLI and the tests' servers log the same way.
        handler_args={"max_field_size": 16384, **access_log_args(responses.access_log)},
        # Uploads stream through bounded reads (http/bodies.py); this only caps a whole-body read.
        client_max_size=configs.manage.max_upload_bytes + FORM_OVERHEAD,
    )
    app[POLICY] = ResponsePolicy(responses.cache_control, responses.cors_origin)
    app[ACCESS] = access_policy(configs.access, configs.output)
    app[READY_TIMEOUT] = configs.metrics.ready_timeout
    app[SEND_TIMEOUT] = configs.sources.send_timeout
    metrics_site = setup_metrics(app, configs.metrics)
    setup_management(app, configs.manage)
    app.cleanup_ctx.append(_lifetime(configs, app[ACCESS], handler_factory, metrics_site))
    setup_playground(app, configs.playground)
    setup_openapi(app)
    setup_routes(app)
    return app


def access_log_args(enabled: bool) -> dict[str, object]:
    """aiohttp's access-log arguments: our one-line format on `origin.access`, or none at all."""
    if not enabled:
        return {"access_log": None}
    return {"access_log": logging.getLogger(ACCESS_LOGGER), "access_log_class": AccessLog}


def _lifetime(
    configs: Configs, access: Access, handler_factory: HandlerFactory | None, metrics_site: Site | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The app's one cleanup context: every resource opened here, in this order, closed in reverse.

    1. the resources: storage, derived storage, render pool, Redis, and the service over them,
       each handed to the handlers that use it as its own app key;
    2. the pool and Redis figures the metrics read at each scrape;
    3. the event emitter (the in-process handler works with the same resources);
    4. the separate metrics site, when configured;
    5. the management API's tokens and its writes in flight, which are drained first at
       shutdown, while the emitter and storage they use are still open.
    """

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            opened = await stack.enter_async_context(open_resources(configs, on_render=app[METRICS].observe_render))
            app[SERVICE], app[STORAGE], app[SHARED] = opened.service, opened.storage, opened.shared
            app[POOL], app[RENDER_CONFIG] = opened.pool, opened.render
            log.info("serving %s", configs.storage.url)
            stack.enter_context(app[METRICS].watching(opened.pool, opened.shared))
            make_handler = functools.partial(handler_factory, configs, access, opened) if handler_factory else None
            app[EMITTER] = await stack.enter_async_context(open_emitter(configs.redis, configs.events, make_handler))
            if metrics_site is not None:
                await stack.enter_async_context(metrics_site(app))
            await stack.enter_async_context(managing(app, configs.manage, configs.storage))
            yield

    return lifetime


@dataclass(frozen=True, slots=True)
class Resources:
    """What a process opens once and closes once, and the image service built over it.

    Made by `open_resources` only. Whoever builds the parts of a process (the app's cleanup
    context, the worker's handler) hands each part the resources it uses: nobody reaches
    through the service for them.
    """

    storage: Storage
    derived: DerivedStore | None
    """Where the worker keeps pre-rendered variants; None when not configured."""
    pool: RenderPool
    render: RenderConfig
    shared: SharedCache | None
    """Redis; None on one machine."""
    service: ImageService


@contextlib.asynccontextmanager
async def open_resources(
    configs: Configs, on_render: Callable[[str, float], None] | None = None, *, storage: Storage | None = None
) -> AsyncIterator[Resources]:
    """The resources `configs` describe, and the ImageService over them; closed on exit.

    Shared by the origin and the worker, so both render through the same wiring.
    `storage`: read and write through this one (the caller's, left open) instead of
    opening the one `configs.storage` names.
    """
    async with contextlib.AsyncExitStack() as owned:
        if storage is None:
            storage = await open_storage(configs.storage.url, configs.storage.timeout)
            owned.push_async_callback(storage.close)
        async with _open_resources(configs, storage, on_render) as resources:
            yield resources


@contextlib.asynccontextmanager
async def _open_resources(
    configs: Configs, storage: Storage, on_render: Callable[[str, float], None] | None
) -> AsyncIterator[Resources]:
    derived = await open_derived(configs.storage)
    pool = RenderPool(
        configs.pool.workers, configs.pool.queue, configs.pool.timeout, configs.pool.retry_after, configs.pool.memory
    )
    redis = SharedCache.open(configs.redis) if configs.redis is not None else None
    cache, sources = configs.cache, configs.sources
    service = ImageService(
        storage=storage,
        variants=ByteLRU[Image](cache.bytes, cache.max_entry_bytes),
        metadata=MetadataCache(cache.metadata_ttl),
        pool=pool,
        config=configs.render,
        max_source_bytes=sources.max_bytes,
        redis=redis,
        on_render=on_render,
        derived=derived,
        memory=SourceMemory(sources.memory, sources.memory_wait, sources.retry_after, pool.tidy_when_idle),
        streams=sources.streams,
    )
    if redis is not None:
        redis.start()
    try:
        yield Resources(storage, derived, pool, configs.render, redis, service)
    finally:
        pool.close()
        if redis is not None:
            await redis.close()
        if derived is not None:
            await derived.close()
