"""Liveness: the process answers. Nothing else.

The render pool's figures (renders in flight, capacity, renders since start) tell whoever plans
an overload how close the process is to refusing work, which is why /_/metrics is private by
default; so /_/health, which is public, publishes none of them. Operators read them from the
metrics (`image_origin_renders_total`, `image_origin_renders_in_flight`, ...).
"""

from __future__ import annotations

from aiohttp import web


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})
