"""Liveness: the process answers and its render pool is not wedged."""

from __future__ import annotations

from aiohttp import web

from .images import SERVICE


async def health(request: web.Request) -> web.Response:
    pool = request.app[SERVICE].pool
    return web.json_response(
        {"status": "ok", "renders_admitted": pool.admitted, "render_capacity": pool.capacity},
        headers={"Cache-Control": "no-store"},
    )
