"""GET /_/openapi.json: the OpenAPI description, generated from the code once at start."""

from __future__ import annotations

from aiohttp import web

from .. import openapi


def setup_openapi(app: web.Application) -> None:
    """Call before `setup_routes`: `/{key}` would otherwise take the path."""
    body = openapi.render().encode()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(
            body=body,
            content_type="application/json",
            headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
        )

    app.router.add_get("/_/openapi.json", serve)
