"""The route table, declared once."""

from __future__ import annotations

from aiohttp import web

from .health import health
from .images import get_image


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/_/health", health)
    app.router.add_get("/{key:.+}", get_image)
