"""create_app(settings): wire storage, caches, render pool and routes; own their lifetimes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from .access import Access
from .cache import ByteLRU, MetadataCache
from .cache.redis import SharedCache
from .derived import open_derived
from .events import HandlerFactory, open_emitter
from .executor import RenderPool
from .http.appkeys import ACCESS, EMITTER, METRICS, POLICY, READY_TIMEOUT, SEND_TIMEOUT, SERVICE, SETTINGS
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
from .settings import Settings
from .signing import Signer
from .source_memory import SourceMemory
from .storage import Storage, open_storage
from .urlparams.text import TextLimits

log = logging.getLogger("origin")


def render_config(settings: Settings) -> RenderConfig:
    return RenderConfig(
        max_source_pixels=settings.max_source_pixels,
        max_source_side=settings.max_source_side,
        animation=settings.animation,
        max_frames=settings.max_frames,
        max_animation_pixels=settings.max_animation_pixels,
        max_animation_encode_pixels=settings.max_animation_encode_pixels,
        max_output_side=settings.max_output_side,
        default_quality=settings.default_quality,
        compress_quality=settings.compress_quality,
        avif_effort=settings.avif_effort,
        webp_effort=settings.webp_effort,
        text=TextLimits(settings.max_text_chars, settings.max_text_lines, settings.max_text_size),
    )


def access_policy(settings: Settings) -> Access:
    """Presets (validated now: a bad one raises PresetError) and signing keys."""
    limits = OutputLimits(
        max_side=settings.max_output_side,
        max_dpr=settings.max_dpr,
        text=TextLimits(settings.max_text_chars, settings.max_text_lines, settings.max_text_size),
    )
    explicit = settings.presets != Settings.model_fields["presets"].default
    if explicit and not settings.presets.exists():
        raise PresetError(f"{settings.presets}: no such file")
    return Access(
        book=load_presets(settings.presets, limits),
        signer=Signer(
            imgix_tokens=tuple(settings.imgix_tokens),
            hmac_keys=tuple(key.encode() for key in settings.signing_keys),
            required=settings.require_signature,
        ),
        limits=limits,
    )


def create_app(settings: Settings, *, handler_factory: HandlerFactory | None = None) -> web.Application:
    """The origin as an aiohttp application. libvips is locked down before anything else.

    `handler_factory` makes the in-process event handler used when there is no Redis (and so
    no worker): without one, the origin's own uploads and deletes are not pre-rendered.
    Every resource opens and closes in one cleanup context (`_lifetime`), in an order it states.
    """
    harden()
    capture_libvips_warnings()
    app = json_app(
        error_cache_control=settings.error_cache_control,
        cors_origin=settings.cors_origin,
        outer=[count_requests],
        # Browsers and CDNs send long Accept and Cookie headers; aiohttp's 8 KiB default would
        # answer them with its own plain-text 400 before our JSON errors could.
        # The access log (off by default) is set here, not by whoever runs the app, so the
        # CLI and the tests' servers log the same way.
        handler_args={"max_field_size": 16384, **access_log_args(settings)},
        # Uploads stream through bounded reads (http/bodies.py); this only caps a whole-body read.
        client_max_size=settings.max_upload_bytes + FORM_OVERHEAD,
    )
    app[SETTINGS] = settings
    app[POLICY] = ResponsePolicy(settings.cache_control, settings.cors_origin)
    app[ACCESS] = access_policy(settings)
    app[READY_TIMEOUT] = settings.ready_timeout
    app[SEND_TIMEOUT] = settings.send_timeout
    metrics_site = setup_metrics(app, settings)
    setup_management(app, settings)
    app.cleanup_ctx.append(_lifetime(settings, handler_factory, metrics_site))
    setup_playground(app, settings)
    setup_openapi(app)
    setup_routes(app)
    return app


def access_log_args(settings: Settings) -> dict[str, object]:
    """aiohttp's access-log arguments: our one-line format on `origin.access`, or none at all."""
    if not settings.access_log:
        return {"access_log": None}
    return {"access_log": logging.getLogger(ACCESS_LOGGER), "access_log_class": AccessLog}


def _lifetime(
    settings: Settings, handler_factory: HandlerFactory | None, metrics_site: Site | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The app's one cleanup context: every resource opened here, in this order, closed in reverse.

    1. the service: storage, derived storage, render pool, Redis;
    2. the event emitter (the in-process handler renders through the service);
    3. the separate metrics site, when configured;
    4. the management API's tokens (kept in storage) and its writes in flight, which are
       drained first at shutdown, while the emitter and storage they use are still open.
    """

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            service = await stack.enter_async_context(open_service(settings, on_render=app[METRICS].observe_render))
            app[SERVICE] = service
            log.info("serving %s", settings.storage_url)
            app[EMITTER] = await stack.enter_async_context(open_emitter(app, settings, handler_factory))
            if metrics_site is not None:
                await stack.enter_async_context(metrics_site(app))
            await stack.enter_async_context(managing(app, settings, service.storage))
            yield

    return lifetime


@contextlib.asynccontextmanager
async def open_service(
    settings: Settings, on_render: Callable[[str, float], None] | None = None, *, storage: Storage | None = None
) -> AsyncIterator[ImageService]:
    """The ImageService `settings` describe, with every resource it owns; closed on exit.

    Shared by the origin and the worker, so both render through the same wiring.
    `storage`: read and write through this one (the caller's, left open) instead of
    opening the one `settings.storage_url` names.
    """
    async with contextlib.AsyncExitStack() as owned:
        if storage is None:
            storage = await open_storage(settings.storage_url, settings.storage_timeout)
            owned.push_async_callback(storage.close)
        async with _open_service(settings, storage, on_render) as service:
            yield service


@contextlib.asynccontextmanager
async def _open_service(
    settings: Settings, storage: Storage, on_render: Callable[[str, float], None] | None
) -> AsyncIterator[ImageService]:
    derived = await open_derived(settings)
    pool = RenderPool(
        settings.render_workers,
        settings.render_queue,
        settings.render_timeout,
        settings.retry_after,
        settings.render_memory,
    )
    redis = SharedCache.from_settings(settings)
    service = ImageService(
        storage=storage,
        variants=ByteLRU[Image](settings.cache_bytes, settings.cache_max_entry_bytes),
        metadata=MetadataCache(settings.metadata_ttl),
        pool=pool,
        config=render_config(settings),
        max_source_bytes=settings.max_source_bytes,
        redis=redis,
        on_render=on_render,
        derived=derived,
        memory=SourceMemory(settings.source_memory, settings.source_memory_wait, settings.retry_after),
        streams=settings.original_streams,
    )
    if redis is not None:
        redis.start()
    try:
        yield service
    finally:
        pool.close()
        if redis is not None:
            await redis.close()
        if derived is not None:
            await derived.close()
