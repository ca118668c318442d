"""The route table, declared once."""

from __future__ import annotations

from aiohttp import web

from .health import health
from .images import get_image


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/_/health", health)
    # [\s\S]: a key with an encoded newline must reach the key validator (400), not miss the route.
    app.router.add_get(r"/{key:[\s\S]+}", get_image)
