"""Originals in an S3 bucket: AWS S3, MinIO, Ceph RGW or R2, through aiobotocore.

`s3://BUCKET/PREFIX?endpoint_url=...&region=...&addressing_style=path|virtual|auto`:
the prefix is prepended to every key and stripped in listings. Credentials come from
the standard AWS chain (environment, shared files, instance roles), never from a URL
that gets logged; so can the endpoint (AWS_ENDPOINT_URL_S3). With `endpoint_url` set,
addressing defaults to path style, which MinIO and RGW accept without wildcard DNS.

One client per process (opened by `open`, closed by `close`) pools its connections.
Every call runs under botocore's connect/read timeouts and an `asyncio.timeout` over
the whole call, retries included: StorageTimeout (504) when it runs out, StorageError
(502) for any other failure, never a hang. Each keeps the botocore/aiohttp error as its
cause (`raise ... from exc`), so the 5xx's log line names it (NoCredentialsError, a reset).

Where S3-compatible servers differ (docs/design.md, "S3-compatible servers"), this code uses what
works on all of them: IfMatch with the ETag unquoted; 412 or 404 on a conditional
replace of a missing key both mean PreconditionFailed; listings resume from our own
decoded cursor (StartAfter), never from a server token. ListObjectsV2 returns no
content type or metadata, so listed items carry content_type "" and no dimensions.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar, cast

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from ..errors import (
    AlreadyExists,
    InvalidKey,
    NotFound,
    PreconditionFailed,
    RangeNotSatisfiable,
    StorageError,
    StorageTimeout,
)
from ..keys import RESERVED_PREFIX, validate_key
from .base import KeysAbsent, KeysTaken, NewObject, ObjectInfo, Page
from .cursor import decode_cursor, encode_cursor
from .location import parse_s3_url

T = TypeVar("T")
log = logging.getLogger("origin.storage")

_MAX_POOL_CONNECTIONS = 64
"""Concurrent requests per process; more wait for a free connection."""
_DELETE_BATCH = 1000
"""DeleteObjects takes at most 1000 keys a request."""
_MAX_KEYS = 1000
"""ListObjectsV2 returns at most 1000 keys a request."""
_S3_KEY_BYTES = 1024
_HIGHEST = "\U0010ffff"
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class S3Storage:
    def __init__(self, client: Any, stack: contextlib.AsyncExitStack, bucket: str, prefix: str, timeout: float) -> None:
        self._client = client
        self._stack = stack
        self.bucket = bucket
        self.prefix = prefix
        self.timeout = timeout

    @classmethod
    async def open(cls, url: str, timeout: float) -> S3Storage:
        """The backend for a `s3://` URL; no request is made until the first call."""
        location = parse_s3_url(url)
        config = AioConfig(
            connect_timeout=timeout,
            read_timeout=timeout,
            # One retry for throttling and dropped connections, still inside the deadline.
            retries={"mode": "standard", "max_attempts": 2},
            max_pool_connections=_MAX_POOL_CONNECTIONS,
            s3={"addressing_style": location.addressing_style},
            # Default CRC32 trailers (botocore >= 1.36) are refused by some S3-compatible servers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3", region_name=location.region, endpoint_url=location.endpoint_url, config=config
            )
        )
        return cls(client, stack, location.bucket, location.prefix, timeout)

    async def ping(self) -> None:
        await self.list("", None, 1)

    async def close(self) -> None:
        await self._stack.aclose()

    async def check_bucket(self) -> None:
        """HeadBucket, at start: credentials, endpoint and bucket checked before the first request.

        StorageTimeout, or StorageError naming the S3 code (403, NoSuchBucket...), cause kept.
        """
        try:
            await self._call(self.bucket, self._client.head_bucket(Bucket=self.bucket))
        except ClientError as exc:
            code = _code(exc) or str(_status(exc))
            reason = {"404": "no such bucket", "NoSuchBucket": "no such bucket", "403": "access denied"}.get(code, code)
            raise StorageError(f"bucket {self.bucket!r}: {reason}") from exc

    async def _call(self, key: str, call: Awaitable[T]) -> T:
        """Await one S3 call under the deadline, mapping transport failures to our errors."""
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except (TimeoutError, ConnectTimeoutError, ReadTimeoutError) as exc:
            raise StorageTimeout(f"storage did not answer in time for {key!r}") from exc
        except ClientError:
            raise  # the caller maps the codes it expects
        except (BotoCoreError, aiohttp.ClientError, OSError) as exc:
            raise StorageError(f"storage failed for {key!r}: {type(exc).__name__}") from exc

    async def head(self, key: str) -> ObjectInfo:
        try:
            reply = await self._call(key, self._client.head_object(Bucket=self.bucket, Key=self._full(key)))
        except ClientError as exc:
            raise _client_error(key, exc) from exc
        return self._info(key, reply, reply["ContentLength"])

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        async def read() -> tuple[bytes, dict[str, Any]]:
            reply = await self._client.get_object(Bucket=self.bucket, Key=self._full(key))
            async with reply["Body"] as body:
                return await body.read(), reply

        try:
            data, reply = await self._call(key, read())
        except ClientError as exc:
            raise _client_error(key, exc) from exc
        return data, self._info(key, reply, len(data))

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> _BodyReader:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            reply = await self._call(key, self._client.get_object(**args))
        except ClientError as exc:
            if _code(exc) == "InvalidRange":
                raise RangeNotSatisfiable("the requested range lies past the end") from None
            raise _client_error(key, exc) from None
        # "bytes 0-9/1234": the object's size is after the slash; without a range, the length.
        size = int(reply.get("ContentRange", "").rpartition("/")[2] or reply["ContentLength"])
        return _BodyReader(key, reply["Body"], self._info(key, reply, size), self.timeout)

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> ObjectInfo:
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._full(key),
            "Body": data,
            "ContentType": content_type,
        }
        if if_none_match:
            args["IfNoneMatch"] = "*"
        elif if_match is not None:
            etag = if_match.strip('"')
            if not (etag.isascii() and etag.isprintable()):
                raise PreconditionFailed(f"the image at key {key!r} is not at version {if_match!r}")
            args["IfMatch"] = etag  # unquoted: quoted always fails on RGW
        try:
            reply = await self._call(key, self._client.put_object(**args))
        except ClientError as exc:
            # 412, or 409 ConditionalRequestConflict while another conditional write is in flight.
            refused = _status(exc) in (409, 412)
            if refused and (if_none_match or if_match is not None):
                mine = await self._written_already(key, data)
                if mine is not None:
                    return dataclasses.replace(mine, content_type=content_type)
            if refused and if_none_match:
                raise AlreadyExists(f"an image exists at key {key!r}") from None
            if if_match is not None and (refused or _code(exc) in _MISSING):
                # 412 on a stale version; on a missing key AWS and moto say 404, RGW 412.
                raise PreconditionFailed(f"the image at key {key!r} is not at version {if_match!r}") from None
            raise _client_error(key, exc) from exc
        return ObjectInfo(
            key=key,
            etag=reply["ETag"].strip('"'),
            size=len(data),
            last_modified=time.time(),  # PutObject does not say; a HEAD would cost a request
            content_type=content_type,
        )

    async def _written_already(self, key: str, data: bytes) -> ObjectInfo | None:
        """The object, if it holds exactly `data`: our own write, whose answer a reset connection lost
        and whose transparent retry (aiohttp resends an idempotent PUT on a dropped keep-alive
        connection, botocore on errors) the condition then refused. Seen in tests/origin/test_faults.py:
        without this, an upload's 201 became a 409. A single-part PUT's ETag is the MD5 of its
        bytes; so a create-only write of exactly the bytes already at the key also succeeds."""
        try:
            info = await self.head(key)
        except (NotFound, StorageError):
            return None
        same = info.size == len(data) and info.etag == hashlib.md5(data, usedforsecurity=False).hexdigest()
        return info if same else None

    async def delete(self, keys: Sequence[str]) -> None:
        full = [self._full(key) for key in keys]
        for start in range(0, len(full), _DELETE_BATCH):
            batch = [{"Key": key} for key in full[start : start + _DELETE_BATCH]]
            call = self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            try:
                reply = await self._call(batch[0]["Key"], call)
            except ClientError as exc:
                raise _client_error(batch[0]["Key"], exc) from exc
            errors = [e for e in reply.get("Errors", []) if e.get("Code") not in _MISSING]
            if errors:
                raise StorageError(f"storage refused to remove {len(errors)} object(s), e.g. {errors[0].get('Key')!r}")

    async def create_all(self, objects: Sequence[NewObject]) -> list[ObjectInfo]:
        """Create-only PUTs side by side (one round trip); a refusal removes what this batch stored.

        S3 has no multi-object transaction: readers may see part of a batch while it is
        being written, and a process killed between the PUTs and the removal leaves
        what it had stored (see the README).
        """
        results = await asyncio.gather(
            *(self.put(o.key, o.data, content_type=o.content_type, if_none_match=True) for o in objects),
            return_exceptions=True,
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        if not failures:
            return [result for result in results if isinstance(result, ObjectInfo)]
        stored = [result.key for result in results if isinstance(result, ObjectInfo)]
        if stored:
            try:
                await self.delete(stored)
            except Exception:
                log.exception("could not remove %d objects of a refused batch: %s", len(stored), stored)
        taken = [o.key for o, result in zip(objects, results, strict=True) if isinstance(result, AlreadyExists)]
        if taken:
            raise KeysTaken(taken)
        raise failures[0]

    async def delete_all(self, keys: Sequence[str]) -> None:
        """HEAD every key (KeysAbsent naming the missing ones), then one DeleteObjects.

        Not atomic against concurrent writers: DeleteObjects cannot be conditional on
        existence, so two concurrent removals of one key can both succeed.
        """
        found = await asyncio.gather(*(self._exists(key) for key in keys))
        missing = [key for key, present in zip(keys, found, strict=True) if not present]
        if missing:
            raise KeysAbsent(missing)
        await self.delete(keys)

    async def _exists(self, key: str) -> bool:
        try:
            await self.head(key)
        except NotFound:
            return False
        return True

    async def list(self, prefix: str, cursor: str | None, limit: int) -> Page:
        limit = min(max(1, limit), _MAX_KEYS)
        after = decode_cursor(cursor, prefix) if cursor is not None else None
        start_after = self.prefix + after if after is not None else ""
        items: list[ObjectInfo] = []
        truncated = True
        while truncated and len(items) < limit:
            args = {"Bucket": self.bucket, "Prefix": self.prefix + prefix, "MaxKeys": limit - len(items)}
            if start_after:
                args["StartAfter"] = start_after
            try:
                reply = await self._call(prefix, self._client.list_objects_v2(**args))
            except ClientError as exc:
                raise _client_error(prefix, exc) from exc
            truncated = bool(reply.get("IsTruncated"))
            contents = reply.get("Contents", [])
            for entry in contents:
                key = entry["Key"][len(self.prefix) :]
                if _valid(key):  # never `_/` (the service's own files), nor keys our API cannot name
                    items.append(
                        ObjectInfo(key, entry["ETag"].strip('"'), entry["Size"], entry["LastModified"].timestamp())
                    )
            if not contents:
                break  # "truncated" with nothing in it: never loop on a confused server
            start_after = contents[-1]["Key"]
            if start_after.startswith(self.prefix + RESERVED_PREFIX):
                start_after = self._past_reserved()
        return Page(items, encode_cursor(items[-1].key) if truncated and items else None)

    def _past_reserved(self) -> str:
        """A StartAfter beyond every key under `_/`: jumps the service's own files in one request."""
        base = self.prefix + RESERVED_PREFIX
        return base + _HIGHEST * ((_S3_KEY_BYTES - len(base.encode())) // 4)

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _info(self, key: str, reply: dict[str, Any], size: int) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            etag=reply["ETag"].strip('"'),
            size=size,
            last_modified=reply["LastModified"].timestamp(),
            content_type=reply.get("ContentType", ""),
        )


class _BodyReader:
    """A GetObject body read a chunk at a time, each read under the storage deadline.

    Closing before the end drops the connection instead of draining it (the rest of a
    large object is not worth reading); reading to the end returns it to the pool.
    """

    def __init__(self, key: str, body: Any, info: ObjectInfo, timeout: float) -> None:
        self.info = info
        self._key = key
        self._body = body
        self._timeout = timeout

    async def read(self, size: int) -> bytes:
        try:
            async with asyncio.timeout(self._timeout):
                return cast(bytes, await self._body.read(size))
        except (TimeoutError, ReadTimeoutError):
            raise StorageTimeout(f"storage did not answer in time for {self._key!r}") from None
        except (BotoCoreError, aiohttp.ClientError, OSError) as exc:
            raise StorageError(f"storage failed for {self._key!r}: {type(exc).__name__}") from None

    async def close(self) -> None:
        self._body.close()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _client_error(key: str, exc: ClientError) -> NotFound | StorageError:
    if _code(exc) in _MISSING:
        return NotFound(f"no image at key {key!r}")
    return StorageError(f"storage failed for {key!r}: {_code(exc) or 'unknown error'}")


def _valid(key: str) -> bool:
    try:
        validate_key(key)
    except InvalidKey:
        return False
    return True
