"""An aiohttp application that answers the origin's way: the public base for every HTTP app we serve.

The origin's app and the worker's webhook both start here, so a client sees the same
JSON error body (`{"error": {"code", "message"}}`) and the same `X-Request-ID` from
either; the worker builds on this instead of reaching into the middlewares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from .middlewares import error_middleware
from .requests import install_request_ids


def json_app(
    *, error_cache_control: str, cors_origin: str = "", outer: Sequence[Any] = (), **options: Any
) -> web.Application:
    """A web.Application whose errors are JSON and whose responses carry a request id.

    `outer`: middlewares that run outside the error middleware (they see its JSON answers);
    `options` go to web.Application as they are.
    """
    app = web.Application(middlewares=[*outer, error_middleware(error_cache_control, cors_origin)], **options)
    install_request_ids(app)
    return app
