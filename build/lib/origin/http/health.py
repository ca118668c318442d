"""Liveness: the process answers and its render pool is not wedged.

`renders` (renders started since the process began) lets a test or an operator see how
many renders N requests cost, across replicas too.
"""

from __future__ import annotations

from aiohttp import web

from .images import SERVICE


async def health(request: web.Request) -> web.Response:
    pool = request.app[SERVICE].pool
    return web.json_response(
        {"status": "ok", "renders_admitted": pool.admitted, "render_capacity": pool.capacity, "renders": pool.renders},
        headers={"Cache-Control": "no-store"},
    )
