"""Error responses, built in exactly one place, and the middleware that turns exceptions into them.

Every error body is `{"error": {"code", "message", "request_id"}}` with nosniff and a short
cache lifetime (5xx: `no-store`), so a CDN does not pin an error for a year and a browser
never renders it. Every 5xx is logged here, once, with its request id and the chain of
causes behind it (a StorageError's NoCredentialsError or timeout); a bug (an exception that
is not an OriginError) is logged with its traceback and answered 500 without details.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.web import BaseRequest

from ..errors import OriginError
from ..logs import causes
from .requests import request_id

log = logging.getLogger("origin.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def error_response(
    request: BaseRequest,
    status: int,
    code: str,
    message: str,
    *,
    cache_control: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
    cause: BaseException | None = None,
) -> web.Response:
    """The one error response; a 5xx is logged here with `cause`'s chain (a bug: its traceback)."""
    rid = request_id(request)
    body = json.dumps({"error": {"code": code, "message": message, **(extra or {}), "request_id": rid}})
    response = web.Response(status=status, text=body, content_type="application/json")
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store" if status >= 500 else cache_control
    response.headers.update(headers or {})
    if status >= 500:
        _log_failure(request, rid, status, code, message, cause)
    return response


def origin_error_response(
    request: BaseRequest, exc: OriginError, cache_control: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """`error_response` for a typed error: its status, code, message, headers and extra fields."""
    return error_response(
        request,
        exc.status,
        exc.code,
        exc.message,
        cache_control=cache_control,
        headers={**(headers or {}), **exc.headers},
        extra=exc.details(),
        cause=exc,
    )


def _log_failure(
    request: BaseRequest, rid: str, status: int, code: str, message: str, cause: BaseException | None
) -> None:
    bug = cause is not None and not isinstance(cause, OriginError)
    chain = causes(cause) if cause is not None and not bug else []
    because = f" <- {' <- '.join(chain[1:])}" if len(chain) > 1 else ""
    level = logging.WARNING if status == 503 else logging.ERROR  # overload is expected, and retried
    log.log(
        level,
        "%s %s -> %d %s: %s%s [request %s]",
        request.method,
        request.path,
        status,
        code,
        message,
        because,
        rid,
        exc_info=cause if bug else None,
        extra={
            "request_id": rid,
            "status": status,
            "code": code,
            "method": request.method,
            "path": request.path,
            "cause": chain[1:],
        },
    )


def error_middleware(error_cache_control: str, cors_origin: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        cors = {"Access-Control-Allow-Origin": cors_origin} if cors_origin else {}
        try:
            return await handler(request)
        except OriginError as exc:
            return origin_error_response(request, exc, error_cache_control, cors)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = _HTTP_CODES.get(exc.status, "http_error")
            allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            return error_response(
                request, exc.status, code, exc.reason, cache_control=error_cache_control, headers=allow, cause=exc
            )
        except Exception as exc:  # noqa: BLE001 - a bug: logged with its traceback, answered 500
            return error_response(
                request, 500, "internal_error", "internal error", cache_control=error_cache_control, cause=exc
            )

    return middleware
