"""The management API: POST /{path} uploads, PUT /{key}, DELETE /{path}, GET / lists.

Handlers are thin: `bodies` reads the request within its limits, `uploads` validates and
stores (all or none), storage enforces the conditions. Every route here is wrapped by
`managed`: CORS for the listed origins only, the bearer token checked before the body
is read, and answers (errors included) that no cache keeps. A write or delete that
succeeded is announced as storage events (origin/events.py), from inside its own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web
from multidict import MultiMapping

from ..errors import (
    AlreadyExists,
    DuplicateParam,
    EmptyBody,
    InvalidForm,
    InvalidKey,
    InvalidParam,
    NotFound,
    OriginError,
    ParamOutOfRange,
    PreconditionFailed,
    UnknownParam,
)
from ..events import announced, created, removed
from ..formats import MIME
from ..keys import validate_key
from ..render import SourceInfo
from ..settings import ManageConfig, StorageConfig
from ..storage import ObjectInfo, Storage
from ..uploads import (
    Stored,
    Upload,
    check_upload,
    refuse_existing,
    remove_all,
    store_batch,
    store_one,
)
from .appkeys import EMITTER, MANAGE_CORS, POOL, RENDER_CONFIG, SERVICE, STORAGE, TOKENS, UPLOAD_LIMIT, WRITES
from .auth import management_tokens
from .bodies import MAX_JSON_BYTES, parse_json, read_body, read_files
from .cors import ManageCors
from .headers import quoted
from .images import key_from_path, request_key
from .middlewares import SECURITY_HEADERS, origin_error_response

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_DELETE = 1000
"""Names in one DELETE: S3's DeleteObjects takes at most 1000 keys, and it is one request."""
_PRIVATE = {"Cache-Control": "no-store", "Vary": "Origin", **SECURITY_HEADERS}


def setup_management(app: web.Application, config: ManageConfig) -> None:
    """Limits and CORS; the tokens and the writes in flight belong to `managing`."""
    app[UPLOAD_LIMIT] = config.max_upload_bytes
    app[MANAGE_CORS] = ManageCors(config.cors_origins)


@contextlib.asynccontextmanager
async def managing(app: web.Application, config: ManageConfig, storage: StorageConfig) -> AsyncIterator[None]:
    """The tokens (a generated one is kept in the local data folder) while entered; on exit, waits
    for the writes in flight, which is why create_app enters this after the storage and the emitter
    they use."""
    app[TOKENS] = management_tokens(config.tokens, storage.local_folder)
    app[WRITES] = set()
    yield
    await asyncio.gather(*app[WRITES], return_exceptions=True)


def managed(handler: Handler) -> Handler:
    """Wrap a management handler: token first, CORS for listed origins, never cached."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        cors = request.app[MANAGE_CORS].headers(request.headers.get("Origin"))
        try:
            request.app[TOKENS].check(request.headers.get("Authorization"))
            response = await handler(request)
        except OriginError as exc:
            response = origin_error_response(request, exc, "no-store")
        response.headers.update(_PRIVATE)
        response.headers.update(cors)
        return response

    return wrapped


async def detached(app: web.Application, work: Coroutine[Any, Any, T]) -> T:
    """Run a write as an app-owned task: once the body is read and validated, the write
    finishes even if the client goes away and its request task is cancelled, and a
    shutdown waits for it, so a batch is never left half stored."""
    task = asyncio.ensure_future(work)
    app[WRITES].add(task)
    task.add_done_callback(app[WRITES].discard)
    return await asyncio.shield(task)


async def upload(request: web.Request) -> web.Response:
    """POST /{path}: multipart files named `data` (or `file`), stored as `{path}/{filename}`, all or none."""
    storage = request.app[STORAGE]
    folder = _folder(request)
    files = await read_files(request, request.app[UPLOAD_LIMIT])
    keys = [_join(folder, file.filename) for file in files]
    await refuse_existing(storage, keys)
    uploads = [
        Upload(key, file.data, await _check(request.app, file.data)) for key, file in zip(keys, files, strict=True)
    ]
    work = store_batch(storage, request.app[SERVICE].invalidate, uploads)
    stored = await detached(
        request.app, announced(request.app[EMITTER], work, lambda done: [created(s.object) for s in done])
    )
    return web.json_response({"images": [_entry(item) for item in stored]}, status=201)


async def put_image(request: web.Request) -> web.Response:
    """PUT /{key}: raw body; `If-None-Match: *` creates, `If-Match` replaces that version only."""
    storage = request.app[STORAGE]
    key = request_key(request)
    create_only, if_match = _preconditions(request)
    data = await read_body(request, request.app[UPLOAD_LIMIT])
    info = await _check(request.app, data)
    if if_match == "*":
        if_match = await _current_etag(storage, key)
    try:
        work = store_one(storage, request.app[SERVICE].invalidate, Upload(key, data, info), if_match=if_match)
        stored = await detached(request.app, announced(request.app[EMITTER], work, lambda done: [created(done.object)]))
    except AlreadyExists:
        if create_only:
            raise PreconditionFailed(f"an image exists at key {key!r}") from None
        raise AlreadyExists(f"an image exists at key {key!r}; send If-Match: <etag> to replace it") from None
    headers = {"ETag": quoted(stored.object.etag)}
    if if_match is None:
        headers["Location"] = _url(key)
    return web.json_response(_entry(stored), status=200 if if_match else 201, headers=headers)


async def delete_images(request: web.Request) -> web.Response:
    """DELETE /{path}: JSON `{"images": [names]}` (or `files`) removes `{path}/{name}`, all or none;
    with no body, the one image at `{path}` (what `DELETE /products/a.png` means)."""
    folder = _folder(request)
    body = await read_body(request, MAX_JSON_BYTES)
    if body:
        keys = [_join(folder, name) for name in _names(parse_json(body))]
    elif folder:
        keys = [folder]
    else:
        raise EmptyBody('DELETE / needs a JSON body such as {"images": ["a.jpg"]}')
    work = remove_all(request.app[STORAGE], request.app[SERVICE].invalidate, keys)
    await detached(request.app, announced(request.app[EMITTER], work, lambda _: [removed(key) for key in keys]))
    return web.json_response({"deleted": keys})


async def list_images(request: web.Request) -> web.Response:
    """GET /: one page of keys in UTF-8 byte order; `next_cursor` resumes after it (null: done)."""
    prefix, cursor, limit = _list_query(request.rel_url.query)
    page = await request.app[STORAGE].list(prefix, cursor, limit)
    return web.json_response({"images": [_listed(info) for info in page.items], "next_cursor": page.cursor})


async def _check(app: web.Application, data: bytes) -> SourceInfo:
    """The upload's probe, in the app's render pool under its source limits (415/422 if refused)."""
    return await check_upload(data, app[POOL], app[RENDER_CONFIG])


def _folder(request: web.Request) -> str:
    """The path a POST or DELETE names ("" at the root), validated before the body is read."""
    raw = request.raw_path.partition("?")[0]
    return "" if raw == "/" else key_from_path(raw.removesuffix("/"))


def _join(folder: str, name: str) -> str:
    try:
        return validate_key(f"{folder}/{name}" if folder else name)
    except InvalidKey as exc:
        raise InvalidKey(f"{name[:255]!r}: {exc.message}") from None


def _preconditions(request: web.Request) -> tuple[bool, str | None]:
    """(create only, the version to replace) from If-None-Match / If-Match, before the body is read."""
    if_none_match = request.headers.get("If-None-Match")
    if_match = request.headers.get("If-Match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise InvalidParam("If-None-Match on PUT must be '*' (create only)")
    if if_match is None:
        return if_none_match is not None, None
    if if_none_match is not None:
        raise PreconditionFailed("If-Match and If-None-Match: * cannot both hold")
    tag = if_match.strip()
    if "," in tag:
        raise InvalidParam("If-Match takes one ETag (or '*')")
    if tag.startswith("W/"):
        raise PreconditionFailed("a weak ETag never matches for a write (RFC 9110 strong comparison)")
    return False, tag if tag == "*" else tag.strip('"')


async def _current_etag(storage: Storage, key: str) -> str:
    """`If-Match: *` replaces whatever version exists: 412 when there is none."""
    try:
        return (await storage.head(key)).etag
    except NotFound:
        raise PreconditionFailed(f"no image at key {key!r} to replace") from None


def _names(body: object) -> list[str]:
    """The names of a DELETE body, without repeats; 400 for any other shape."""
    if not isinstance(body, dict) or len(body) != 1 or not {"images", "files"} & body.keys():
        raise InvalidForm('expected {"images": ["name", ...]} (or "files")')
    names = next(iter(body.values()))
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise InvalidForm("the image names must be a list of strings")
    if not names:
        raise InvalidForm("the list of image names is empty")
    if len(names) > MAX_DELETE:
        raise InvalidForm(f"at most {MAX_DELETE} images can be removed in one request")
    return list(dict.fromkeys(names))


def _list_query(query: MultiMapping[str]) -> tuple[str, str | None, int]:
    """(prefix, cursor, limit); unknown or repeated parameters are refused, as on GET /{key}."""
    values: dict[str, str] = {}
    for name, value in query.items():
        if name not in ("prefix", "cursor", "limit"):
            raise UnknownParam(f"unknown parameter {name[:64]!r}")
        if name in values:
            raise DuplicateParam(f"parameter {name!r} is given more than once")
        values[name] = value
    prefix = values.get("prefix", "")
    if prefix:
        # A prefix is valid when some valid key can start with it: `photos/` and `pho`
        # pass, `../`, `_/` and control characters do not.
        try:
            validate_key(prefix + "x")
        except InvalidKey as exc:
            raise InvalidKey(f"prefix: {exc.message}") from None
    return prefix, values.get("cursor") or None, _limit(values.get("limit"))


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidParam(f"limit must be an integer, got {raw[:32]!r}")
    value = int(raw) if len(raw) <= 9 else MAX_LIMIT + 1
    if not 1 <= value <= MAX_LIMIT:
        raise ParamOutOfRange(f"limit must be between 1 and {MAX_LIMIT}")
    return value


def _url(key: str) -> str:
    return "/" + quote(key, safe="/")


def _entry(stored: Stored) -> dict[str, object]:
    """A stored image: its version from storage, its size and format from the probe."""
    return {
        "key": stored.object.key,
        "url": _url(stored.object.key),
        "etag": stored.object.etag,
        "size": stored.object.size,
        "width": stored.info.width,
        "height": stored.info.height,
        "format": stored.info.format,
        "content_type": MIME[stored.info.format],
    }


def _listed(info: ObjectInfo) -> dict[str, object]:
    """A listed image; `last_modified` is ISO 8601 in UTC (`2024-05-01T12:00:00Z`)."""
    return {
        "key": info.key,
        "url": _url(info.key),
        "size": info.size,
        "etag": info.etag,
        "last_modified": datetime.fromtimestamp(info.last_modified, UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "content_type": info.content_type or None,
    }
