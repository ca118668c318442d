"""GET /_/metrics (the Prometheus scrape, never public by accident) and the request counter.

Where metrics are served, from settings:
- `metrics_port` set: only on a second, tiny site at `metrics_host:metrics_port` that starts
  and stops with the app; the main port answers 404 as for any unknown path.
- otherwise on the main port, when `metrics_token` is set or `metrics_public` is on;
- otherwise nowhere (404): figures such as queue depth help whoever plans an overload.
Wherever they are served, a `metrics_token` is required as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from aiohttp import web

from ..errors import OriginError
from ..metrics import Metrics
from ..settings import MetricsConfig
from ..tokens import Tokens
from .appkeys import METRICS, METRICS_ADDRESS
from .middlewares import Handler, error_middleware, origin_error_response

PATH = "/_/metrics"
Site = Callable[[web.Application], AbstractAsyncContextManager[None]]
"""The separate metrics site: entered for the app's lifetime (it records METRICS_ADDRESS)."""
log = logging.getLogger("origin.metrics")
_SYSTEM_ROUTES = {"/_/health": "health", "/_/ready": "health", PATH: "metrics"}
_READS = frozenset({"GET", "HEAD"})


def setup_metrics(app: web.Application, config: MetricsConfig) -> Site | None:
    """The app's metrics and its /_/metrics route; with `metrics_port`, the separate site to run
    for the app's lifetime (create_app opens it after the resources, so it stops first).

    Call before `setup_routes`, whose `/{key}` would otherwise take the path (a 400 for the
    reserved `_/`, where a 404 says nothing).
    """
    metrics = app[METRICS] = Metrics()
    tokens = Tokens((config.token.encode(),)) if config.token else None
    scrape = _scrape(metrics, tokens)
    on_main_port = config.port is None and (tokens is not None or config.public)
    app.router.add_get(PATH, scrape if on_main_port else _not_found)
    if config.port is None:
        return None
    return _separate_site(scrape, config.host, config.port)


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer by route and status; outermost, so it sees the status the client gets."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and the like, which the error middleware passes on
        request.app[METRICS].request(route_label(request), exc.status)
        raise
    request.app[METRICS].request(route_label(request), response.status)
    return response


def route_label(request: web.Request) -> str:
    """The request's route as one of `metrics.ROUTES`, never its path (which anyone can vary).

    A read of a key is `image` when it has a query (a variant, or a refused one), else `original`.
    """
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else None
    if path in _SYSTEM_ROUTES:
        return _SYSTEM_ROUTES[path]
    if path == "/{key}" and request.method in _READS:
        return "image" if request.query_string else "original"
    if path in ("/{key}", "/"):
        return "manage"
    return "other"


def _scrape(metrics: Metrics, tokens: Tokens | None) -> Handler:
    async def scrape(request: web.Request) -> web.Response:
        if tokens is not None:
            try:
                tokens.check(request.headers.get("Authorization"))
            except OriginError as exc:
                return origin_error_response(request, exc, "no-store")
        body, content_type = metrics.exposition(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    return scrape


async def _not_found(request: web.Request) -> web.Response:
    raise web.HTTPNotFound()


def _separate_site(scrape: Handler, host: str, port: int) -> Site:
    """A site serving only /_/metrics on its own address, while entered."""

    @contextlib.asynccontextmanager
    async def serve(app: web.Application) -> AsyncIterator[None]:
        side = web.Application(middlewares=[error_middleware("no-store", "")])
        side.router.add_get(PATH, scrape)
        runner = web.AppRunner(side, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            address: tuple[Any, ...] = runner.addresses[0]
            app[METRICS_ADDRESS] = address
            log.info("metrics on http://%s:%s%s", address[0], address[1], PATH)
            yield
        finally:
            await runner.cleanup()

    return serve
