"""GET/HEAD /{key}: originals and transformed variants."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

from ..access import Access, authorize, read_query
from ..errors import InvalidKey
from ..formats import negotiate
from ..keys import validate_key
from ..metrics import Metrics
from ..service import Image, ImageService
from . import headers as h
from .middlewares import SECURITY_HEADERS


@dataclass(frozen=True, slots=True)
class ResponsePolicy:
    """Header values that come from settings, fixed at start."""

    cache_control: str
    cors_origin: str


SERVICE = web.AppKey("service", ImageService)
POLICY = web.AppKey("policy", ResponsePolicy)
ACCESS = web.AppKey("access", Access)
METRICS = web.AppKey("metrics", Metrics)


def request_key(request: web.Request) -> str:
    return key_from_path(request.raw_path.partition("?")[0])


@functools.lru_cache(maxsize=8192)
def key_from_path(raw_path: str) -> str:
    """The object key from the raw path, percent-decoded once, then validated (memoised).

    Decoding ourselves from `raw_path` means `%2e%2e/x` and `..%2fx` are seen as the
    `../x` they spell and refused, whatever the router would have normalised.
    """
    raw = raw_path.removeprefix("/")
    try:
        key = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise InvalidKey("the key is not valid UTF-8") from None
    return validate_key(key)


async def get_image(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    policy = request.app[POLICY]
    access = request.app[ACCESS]
    raw_path, _, raw_query = request.raw_path.partition("?")
    key = key_from_path(raw_path)
    spec = authorize(read_query(raw_query, access), access, key=key, raw_path=raw_path, now=time.time())
    if spec.needs_render:
        accepts = negotiate(request.headers.get("Accept", ""))
        etag, source = await service.variant_etag(key, spec, accepts)
        negotiated = spec.fm is None and "format" in spec.auto
        if h.not_modified(
            request.headers.get("If-None-Match"), request.headers.get("If-Modified-Since"), etag, source.last_modified
        ):
            return _not_modified(etag, source.last_modified, key, policy, negotiated)
        image = await service.variant(key, spec, accepts, etag, source)
        return _respond(request, image, key, policy, spec.dl, ranged=False)
    source = await service.source_info(key)
    if h.not_modified(
        request.headers.get("If-None-Match"),
        request.headers.get("If-Modified-Since"),
        source.etag,
        source.last_modified,
    ):
        return _not_modified(source.etag, source.last_modified, key, policy, False)
    image = await service.original(key)
    return _respond(request, image, key, policy, spec.dl, ranged=True)


@functools.lru_cache(maxsize=8192)
def _common(etag: str, modified: float, key: str, policy: ResponsePolicy, negotiated: bool) -> dict[str, str]:
    """Headers every response for this variant carries (memoised; callers copy before adding)."""
    headers = {
        "ETag": h.quoted(etag),
        "Last-Modified": h.http_date(modified),
        "Cache-Control": policy.cache_control,
        "Cache-Tag": h.cache_tag(key),
        "Surrogate-Key": h.cache_tag(key),
        **SECURITY_HEADERS,
    }
    if policy.cors_origin:
        headers["Access-Control-Allow-Origin"] = policy.cors_origin
    if negotiated:
        headers["Vary"] = "Accept"
    return headers


def _not_modified(etag: str, modified: float, key: str, policy: ResponsePolicy, negotiated: bool) -> web.Response:
    return web.Response(status=304, headers=dict(_common(etag, modified, key, policy, negotiated)))


def _respond(
    request: web.Request, image: Image, key: str, policy: ResponsePolicy, download: str | None, *, ranged: bool
) -> web.Response:
    headers = dict(_common(image.etag, image.source.last_modified, key, policy, image.negotiated))
    headers["X-Cache"] = image.cache
    request.app[METRICS].served(image)
    headers["Server-Timing"] = h.server_timing(image.timings, image.cache)
    if download:
        headers["Content-Disposition"] = h.content_disposition(download)
    body = image.body
    status = 200
    if ranged:
        headers["Accept-Ranges"] = "bytes"
        if_range = request.headers.get("If-Range")
        if if_range is None or if_range == h.quoted(image.etag):
            span = h.byte_range(request.headers.get("Range"), len(body))
            if span is not None:
                start, end = span
                body = body[start : end + 1]
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{len(image.body)}"
    return web.Response(status=status, body=body, content_type=image.content_type, headers=headers)
