"""Listing cursors: the last key returned, in URL-safe base64, checked on the way in.

Every backend issues and checks cursors the same way, and only our own decoded key
ever reaches storage (as S3's StartAfter), never a client-provided token: S3-compatible
servers treat a bogus continuation token differently (200 on RGW, 500 on moto, 400 on
AWS), so a forged cursor must be refused before it leaves the process.
"""

from __future__ import annotations

import base64
import binascii

from ..errors import InvalidCursor, InvalidKey
from ..keys import validate_key


def encode_cursor(key: str) -> str:
    """The cursor that resumes a listing after `key`."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, prefix: str) -> str:
    """The key `cursor` resumes after; InvalidCursor unless it is one we could have issued for `prefix`."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        key = validate_key(raw.decode("utf-8"))
    except (binascii.Error, ValueError, InvalidKey):
        raise InvalidCursor("the cursor is not one this listing issued") from None
    if encode_cursor(key) != cursor or not key.startswith(prefix):
        # Not our canonical spelling, or a cursor from a listing of another prefix.
        raise InvalidCursor("the cursor is not one this listing issued")
    return key
