"""One error middleware: typed errors become JSON; anything else is logged as a bug.

Every error body is `{"error": {"code", "message"}}` with nosniff and a short cache
lifetime, so a CDN does not pin an error for a year and a browser never renders it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import OriginError

log = logging.getLogger("origin.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def error_response(status: int, code: str, message: str, cache_control: str, headers: dict[str, str]) -> web.Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    response = web.Response(status=status, text=body, content_type="application/json")
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store" if status >= 500 else cache_control
    response.headers.update(headers)
    return response


def error_middleware(error_cache_control: str, cors_origin: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        cors = {"Access-Control-Allow-Origin": cors_origin} if cors_origin else {}
        try:
            return await handler(request)
        except OriginError as exc:
            return error_response(exc.status, exc.code, exc.message, error_cache_control, {**cors, **exc.headers})
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = _HTTP_CODES.get(exc.status, "http_error")
            allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            return error_response(exc.status, code, exc.reason, error_cache_control, allow)
        except Exception:
            log.exception("unhandled error for %s %s", request.method, request.path)
            return error_response(500, "internal_error", "internal error", error_cache_control, {})

    return middleware
