"""Storage events as the worker sees them, whatever delivered them (SQS, a webhook, the origin)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["created", "removed"]


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
