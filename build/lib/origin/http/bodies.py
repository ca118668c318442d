"""Request bodies read in bounded chunks: a client can never make us hold more than a limit.

aiohttp's `client_max_size` guards only `read()` and `post()`, which buffer a whole body
first. Here a declared Content-Length past the limit is refused before a byte is read,
and every chunk is counted as it arrives, so a chunked body that grows past the limit is
refused one chunk later (413). A client that goes away mid-body ends the request here,
before anything has been validated or stored.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ..errors import EmptyBody, InvalidForm, PayloadTooLarge

CHUNK = 64 * 1024
FORM_OVERHEAD = 64 * 1024
"""Room for boundaries and part headers on top of the file bytes of a multipart request."""
MAX_FILES = 100
"""Files in one POST: each is decoded before any is stored, so a batch must stay small."""
MAX_JSON_BYTES = 1024 * 1024
"""A DELETE body: 1000 names of 255 bytes, JSON-quoted, fit with room to spare."""
_MALFORMED = (ValueError, LookupError, RuntimeError, AssertionError, HttpProcessingError)
"""What aiohttp's multipart parser raises for a body it cannot parse."""


@dataclass(frozen=True, slots=True)
class FilePart:
    filename: str
    data: bytes


def refuse_declared(request: web.Request, limit: int) -> None:
    """413 from the Content-Length header alone, before the body is read."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the request body is larger than {_human(limit)}")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body (PUT), at most `limit` bytes."""
    refuse_declared(request, limit)
    return await _collect(request.content.read, request, limit, limit)


async def read_files(request: web.Request, limit: int) -> list[FilePart]:
    """The file parts named `data` of a multipart/form-data body, each at most `limit` bytes.

    400 invalid_form for anything else: another content type, a part not named `data`,
    a part without a file name, two parts with one file name, no file part at all.
    """
    request_limit = limit + FORM_OVERHEAD
    refuse_declared(request, request_limit)
    if request.content_type != "multipart/form-data":
        raise InvalidForm("the body must be multipart/form-data with file parts named 'data'")
    files: list[FilePart] = []
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name != "data":
                raise InvalidForm("every part must be a file named 'data'")
            name = part.filename
            if not name:
                raise InvalidForm("a part named 'data' has no file name")
            if any(file.filename == name for file in files):
                raise InvalidForm(f"two parts have the file name {name!r}")
            if len(files) == MAX_FILES:
                raise InvalidForm(f"at most {MAX_FILES} files can be uploaded in one request")
            data = await _collect(part.read_chunk, request, limit, request_limit)
            if not data:
                raise EmptyBody(f"the file {name!r} is empty")
            files.append(FilePart(name, data))
    except _MALFORMED:
        raise InvalidForm("the multipart body is malformed") from None
    if not files:
        raise InvalidForm("no file part named 'data'")
    return files


async def read_json(request: web.Request) -> object:
    """A small JSON body (DELETE); 400 invalid_form when it does not parse."""
    body = await read_body(request, MAX_JSON_BYTES)
    if not body:
        raise EmptyBody('the body is empty; expected JSON such as {"images": ["a.jpg"]}')
    try:
        return json.loads(body)
    except ValueError:
        raise InvalidForm("the body is not valid JSON") from None


async def _collect(
    read: Callable[[int], Awaitable[bytes]], request: web.Request, limit: int, request_limit: int
) -> bytes:
    """Read chunks until the end, refusing one past `limit` (this item) or `request_limit` (all)."""
    data = bytearray()
    while chunk := await read(CHUNK):
        data += chunk
        if len(data) > limit or request.content.total_bytes > request_limit:
            raise PayloadTooLarge(f"the upload is larger than {_human(limit)}")
    return bytes(data)


def _human(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB" if size >= 1024 * 1024 else f"{size} bytes"
