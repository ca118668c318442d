"""Storage events as the worker sees them, whatever delivered them (SQS, a webhook, the origin).

Parsing is pure, so every body a storage server sends can be pinned by a test. The
servers agree on the `Records` shape but not on the key: AWS S3 (and moto) and MinIO
percent-encode it (`unquote_plus`), Ceph RGW sends it raw. A body we cannot read at all
is a `MalformedEvent` (the source logs and acknowledges it: retrying cannot fix it); a
record we can read but do not want (a test event, another bucket, an event type we do
not act on, a key the origin would refuse) is skipped with a log line, never a crash.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import unquote_plus

from origin.errors import InvalidKey
from origin.keys import validate_key
from origin.storage.location import parse_s3_url
from origin.storage_events import Kind, MalformedEvent, StorageEvent

log = logging.getLogger("workers.events")

_SOURCES = {"aws:s3": "aws", "minio:s3": "minio", "ceph:s3": "rgw"}
"""eventSource -> our source name. RGW alone sends the key unencoded."""
_RAW_KEYS = frozenset({"rgw"})
_KINDS: dict[str, Kind] = {
    "ObjectCreated": "created",
    "ObjectRemoved": "removed",
    # An expired object is as gone as a deleted one: its variants must go too.
    "LifecycleExpiration": "removed",
}


@dataclass(frozen=True, slots=True)
class Scope:
    """Which records are ours: the storage bucket (None: any) and its key prefix, stripped from keys.

    A bucket can notify one queue for several buckets, and a bucket can hold more than the
    originals; a key outside the prefix is not an original and is skipped.
    """

    bucket: str | None = None
    prefix: str = ""

    @classmethod
    def of(cls, storage_url: str) -> Scope:
        """The scope of the origin's storage: its bucket and prefix on S3; anything on a local folder."""
        if not storage_url.startswith("s3:"):
            return cls()
        location = parse_s3_url(storage_url)
        return cls(location.bucket, location.prefix)


def parse_message(body: bytes | str, scope: Scope = Scope()) -> list[StorageEvent]:
    """The events of one queue message or webhook body, in order, without repeats.

    Accepts the S3 `Records` body (AWS via SQS, moto, MinIO, RGW), the same wrapped in an
    SNS notification (`Message` holds it as a string), and AWS's `s3:TestEvent` (no events).
    """
    document = _json(body)
    if isinstance(document, dict) and isinstance(document.get("Message"), str) and "Records" not in document:
        document = _json(document["Message"])  # S3 -> SNS -> SQS without raw message delivery
    if not isinstance(document, dict):
        raise MalformedEvent("expected a JSON object")
    if document.get("Event") == "s3:TestEvent":
        return []
    records = document.get("Records")
    if not isinstance(records, list):
        raise MalformedEvent("expected a 'Records' list")
    events = (_record(record, scope) for record in records)
    return list(dict.fromkeys(event for event in events if event is not None))


def _json(body: bytes | str) -> object:
    try:
        return json.loads(body)
    except (ValueError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedEvent(f"not JSON: {exc}") from None


def _record(record: object, scope: Scope) -> StorageEvent | None:
    """One record as an event, or None (logged) when it is not one we act on."""
    try:
        source_name = record["eventSource"]  # type: ignore[index]
        event_name = record["eventName"]  # type: ignore[index]
        bucket = record["s3"]["bucket"]["name"]  # type: ignore[index]
        obj = record["s3"]["object"]  # type: ignore[index]
        raw_key = obj["key"]
        etag = obj.get("eTag") or ""
    except (KeyError, TypeError, AttributeError):
        raise MalformedEvent("a record lacks eventSource, eventName, s3.bucket.name or s3.object.key") from None
    if not all(isinstance(value, str) for value in (source_name, event_name, bucket, raw_key, etag)):
        raise MalformedEvent("a record's eventSource, eventName, bucket, key or eTag is not a string")
    source = _SOURCES.get(source_name)
    kind = _KINDS.get(event_name.removeprefix("s3:").partition(":")[0])
    if source is None or kind is None:
        log.info("skipped an event we do not act on: %s from %s", event_name[:64], source_name[:64])
        return None
    if scope.bucket is not None and bucket != scope.bucket:
        log.debug("skipped an event for bucket %r (ours is %r)", bucket[:64], scope.bucket)
        return None
    try:
        key = raw_key if source in _RAW_KEYS else unquote_plus(raw_key, errors="strict")
    except UnicodeDecodeError:
        log.warning("skipped an event whose key is not UTF-8 once decoded: %r", raw_key[:128])
        return None
    if not key.startswith(scope.prefix):
        log.debug("skipped an event for %r, outside the prefix %r", key[:128], scope.prefix)
        return None
    try:
        key = validate_key(key.removeprefix(scope.prefix))
    except InvalidKey as exc:
        log.warning("skipped an event for key %r: %s", key[:128], exc.message)
        return None
    return StorageEvent(kind, key, etag.strip('"') or None, source)
