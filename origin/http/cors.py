"""CORS for the management API: only the configured origins, and their preflights.

Reads are a simple GET that any page may embed (`cors_origin`, `*` by default), but a
page may upload or delete only from an origin listed in `manage_cors_origins` (none by
default). A listed origin gets its own name back, never `*`; any other origin gets no
CORS header at all, so the browser refuses to send the request or to show its answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .appkeys import MANAGE_CORS

ALLOW = "GET, HEAD, POST, PUT, DELETE, OPTIONS"
_PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match, If-None-Match",
    "Access-Control-Max-Age": "600",
}


@dataclass(frozen=True, slots=True)
class ManageCors:
    origins: frozenset[str]

    def headers(self, origin: str | None) -> dict[str, str]:
        """CORS headers for a management response to `origin` (none unless it is listed)."""
        if origin is None or origin not in self.origins:
            return {}
        return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": "ETag, Location"}


async def preflight(request: web.Request) -> web.Response:
    """OPTIONS: 204 with the methods; for a listed origin's preflight, the CORS grants too."""
    headers = {"Allow": ALLOW, "Vary": "Origin"}
    cors = request.app[MANAGE_CORS].headers(request.headers.get("Origin"))
    if cors and "Access-Control-Request-Method" in request.headers:
        headers.update(cors)
        headers.update(_PREFLIGHT)
    return web.Response(status=204, headers=headers)
