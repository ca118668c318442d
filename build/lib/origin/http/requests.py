"""Request ids: `X-Request-ID` taken from the request when it is safe, else made; on every response.

A CDN or load balancer usually sets one; echoing it lets an operator follow one request
from the edge to our log line. Anyone can send the header, so it is accepted only when
short and made of characters that cannot forge a log line or a header (else replaced).
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web
from aiohttp.web import BaseRequest

HEADER = "X-Request-ID"
MAX_LENGTH = 128
_SAFE = re.compile(r"[A-Za-z0-9._~:/=+-]{1,%d}" % MAX_LENGTH)
_KEY = web.RequestKey("request_id", str)


def request_id(request: BaseRequest) -> str:
    """This request's id, fixed on first use: the client's if valid, else 32 random hex digits."""
    known = request.get(_KEY)
    if known is None:
        sent = request.headers.get(HEADER, "")
        known = request[_KEY] = sent if _SAFE.fullmatch(sent) else uuid.uuid4().hex
    return str(known)


async def _stamp(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[HEADER] = request_id(request)


def install_request_ids(app: web.Application) -> None:
    """Every response of `app` (errors, 304s, streamed bodies) carries the request's id."""
    app.on_response_prepare.append(_stamp)
