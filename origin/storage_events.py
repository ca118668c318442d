"""What a storage event is, and how it travels on the Redis stream: shared by the origin and the worker.

The origin writes these (its own uploads and deletes), the worker's webhook writes them
too, and the worker's stream consumer reads them back; so the type and its wire format
live here, on the side everybody depends on. Parsing what storage servers send (S3
`Records` bodies) is the worker's business: `workers/events.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, cast

from .errors import InvalidKey
from .keys import validate_key

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

Kind = Literal["created", "removed"]
_FIELDS = ("kind", "key", "etag", "source")


@dataclass(frozen=True, slots=True)
class StorageEvent:
    """One object created/overwritten or removed.

    Events are at-least-once and unordered: handlers must be idempotent, and a `created`
    event whose `etag` no longer matches the stored object is stale and skipped.
    """

    kind: Kind
    key: str
    """Decoded and validated with origin.keys.validate_key."""
    etag: str | None
    """Unquoted; None when the source sent none (RGW sends "" for a delete of a missing key)."""
    source: str
    """Who delivered it: "aws" (S3 via SQS, moto too), "rgw", "minio" or "origin"."""


class Handler(Protocol):
    """What the sources drive: returns when the event is done (or to be skipped), raises to retry it."""

    async def handle(self, event: StorageEvent) -> object: ...


class MalformedEvent(ValueError):
    """The body is not JSON, or not the shape of any event body we know (docs/threats.md W1)."""


def stream_key(prefix: str) -> str:
    """The Redis stream the origin and the webhook append events to, and the worker reads."""
    return f"{prefix}events"


def to_fields(event: StorageEvent) -> dict[FieldT, EncodableT]:
    """A stream entry's fields, all str (Redis has no null: an unknown ETag is "").

    Typed as redis-py's field mapping because `xadd` takes exactly that (a dict is invariant).
    """
    return {"kind": event.kind, "key": event.key, "etag": event.etag or "", "source": event.source}


def from_fields(fields: Mapping[bytes, bytes]) -> StorageEvent:
    """The event a stream entry holds; MalformedEvent for an entry we did not write."""
    try:
        kind, key, etag, source = (fields[name.encode()].decode() for name in _FIELDS)
        if kind not in ("created", "removed"):
            raise MalformedEvent(f"unknown kind {kind!r}")
        return StorageEvent(cast(Kind, kind), validate_key(key), etag or None, source)
    except (KeyError, UnicodeDecodeError, InvalidKey) as exc:
        raise MalformedEvent(f"not an event entry: {exc}") from None
