"""GET/HEAD /{key}: originals and transformed variants."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

from .. import hints
from ..access import authorize, expiry, read_query, with_hints
from ..errors import InvalidKey, OriginError
from ..formats import negotiate
from ..keys import cache_tag, validate_key
from ..service import Image, Original, Span
from ..storage import ObjectInfo
from ..variant import VariantRequest
from . import headers as h
from .appkeys import ACCESS, METRICS, POLICY, SEND_TIMEOUT, SERVICE
from .middlewares import SECURITY_HEADERS


@dataclass(frozen=True, slots=True)
class ResponsePolicy:
    """Header values that come from settings, fixed at start."""

    cache_control: str
    cors_origin: str


log = logging.getLogger("origin.http")


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
    asked, now = read_query(raw_query, access), time.time()
    spec = with_hints(asked, authorize(asked, access, key=key, raw_path=raw_path, now=now), access, request.headers)
    extra = _per_request(policy, spec.ch, expiry(asked, now), now)
    if spec.needs_render:
        variant = await service.resolve(VariantRequest(key, spec, negotiate(request.headers.get("Accept", ""))))
        modified = variant.source.last_modified
        if _unchanged(request, variant.etag, modified):
            return _not_modified(variant.etag, modified, key, policy, spec.negotiates, extra)
        return _respond(request, await service.variant(variant), key, policy, spec.dl, extra)
    source = await service.source_info(key)
    if _unchanged(request, source.etag, source.last_modified):
        return _not_modified(source.etag, source.last_modified, key, policy, False, extra)
    range_header, if_range = request.headers.get("Range"), request.headers.get("If-Range")

    def span_for(version: ObjectInfo) -> Span | None:
        if if_range is not None and if_range != h.quoted(version.etag):
            return None  # the client's copy is stale: the whole (new) object
        return h.byte_range(range_header, version.size)

    async with service.original(key, span_for, body=request.method != "HEAD") as original:
        return await _send_original(request, original, key, policy, spec.dl, extra)


def _unchanged(request: web.Request, etag: str, modified: float) -> bool:
    """The client's copy is this version (If-None-Match, else If-Modified-Since): a 304."""
    return h.not_modified(
        request.headers.get("If-None-Match"), request.headers.get("If-Modified-Since"), etag, modified
    )


async def _send_original(
    request: web.Request,
    original: Original,
    key: str,
    policy: ResponsePolicy,
    download: str | None,
    extra: dict[str, str],
) -> web.StreamResponse:
    """Headers first, then the body a chunk at a time: each write waits for the client to take
    the previous one, so a slow reader holds one chunk, never the whole original."""
    headers = _merged(dict(_common(original.source.etag, original.source.last_modified, key, policy, False)), extra)
    headers["X-Cache"] = original.cache
    request.app[METRICS].served(original)
    headers["Server-Timing"] = h.server_timing(original.timings, original.cache)
    headers["Accept-Ranges"] = "bytes"
    if download:
        headers["Content-Disposition"] = h.content_disposition(download)
    status = 200
    if original.span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {original.span[0]}-{original.span[1]}/{original.source.size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = original.content_type
    response.content_length = original.length
    await response.prepare(request)
    if request.method == "HEAD":
        await response.write_eof()
        return response
    deadline = request.app[SEND_TIMEOUT]
    try:
        async for chunk in original.chunks():
            async with asyncio.timeout(deadline):
                await response.write(chunk)
    except (TimeoutError, OriginError) as exc:
        # Headers are out: the only honest answer left is a cut connection (never a short 200).
        log.debug("original %r cut short: %s", key, exc)
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response


@functools.lru_cache(maxsize=8192)
def _common(etag: str, modified: float, key: str, policy: ResponsePolicy, negotiated: bool) -> dict[str, str]:
    """Headers every response for this variant carries (memoised; callers copy before adding)."""
    headers = {
        "ETag": h.quoted(etag),
        "Last-Modified": h.http_date(modified),
        "Cache-Control": policy.cache_control,
        "Cache-Tag": cache_tag(key),
        "Surrogate-Key": cache_tag(key),
        **SECURITY_HEADERS,
    }
    if policy.cors_origin:
        headers["Access-Control-Allow-Origin"] = policy.cors_origin
    if negotiated:
        headers["Vary"] = "Accept"
    return headers


def _per_request(policy: ResponsePolicy, ch: tuple[str, ...], expires: int | None, now: float) -> dict[str, str]:
    """Headers a variant's response carries beyond the memoised ones: under `ch`, the hints it
    depends on (`Vary`, `Accept-CH`); under `expires`, a max-age no longer than what remains."""
    extra = {}
    if ch:
        extra["Accept-CH"] = hints.accept_ch(ch)
        extra["Vary"] = ", ".join(hints.vary(ch))
    if expires is not None:
        extra["Cache-Control"] = h.bounded_cache_control(policy.cache_control, int(expires - now))
    return extra


def _merged(headers: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    vary = ", ".join(v for v in (headers.get("Vary"), extra.get("Vary")) if v)
    headers.update(extra)
    if vary:
        headers["Vary"] = vary
    return headers


def _not_modified(
    etag: str, modified: float, key: str, policy: ResponsePolicy, negotiated: bool, extra: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=304, headers=_merged(dict(_common(etag, modified, key, policy, negotiated)), extra or {})
    )


def _respond(
    request: web.Request, image: Image, key: str, policy: ResponsePolicy, download: str | None, extra: dict[str, str]
) -> web.Response:
    headers = _merged(dict(_common(image.etag, image.source.last_modified, key, policy, image.negotiated)), extra)
    headers["X-Cache"] = image.cache
    request.app[METRICS].served(image)
    headers["Server-Timing"] = h.server_timing(image.timings, image.cache)
    if download:
        headers["Content-Disposition"] = h.content_disposition(download)
    return web.Response(body=image.body, content_type=image.content_type, headers=headers)
