"""The one key validator, used by every route (and later the worker).

It applies the stricter of the S3 and file-system rules so a key that is valid on
one backend is valid on all of them, and so no key can escape the storage root.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from .errors import InvalidKey

MAX_KEY_BYTES = 512
MAX_SEGMENT_BYTES = 255
RESERVED_PREFIX = "_/"
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Characters that reorder the text around them: `cat\u202egpj.exe` displays as `catexe.jpg`.
Refused in keys and download names so no name can disguise its extension in a listing,
a log line or a browser's download bar."""


def bidi_controls(text: str) -> list[str]:
    """The bidirectional controls in `text`, named as U+XXXX, in order of first appearance."""
    return list(dict.fromkeys(f"U+{ord(c):04X}" for c in text if c in BIDI_CONTROLS))


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is a safe object key, else raise InvalidKey.

    Refused: empty keys, a leading `/`, empty, `.` or `..` segments, backslashes,
    control characters (C0 including NUL, DEL, and C1 such as U+0085), bidirectional
    controls (U+202E and the like, see BIDI_CONTROLS), over 512 bytes
    or a segment over 255, and the reserved `_/` prefix that holds the service's own files.
    """
    if not key:
        raise InvalidKey("the key is empty")
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKey("the key is not valid UTF-8") from None
    if len(raw) > MAX_KEY_BYTES:
        raise InvalidKey(f"the key is longer than {MAX_KEY_BYTES} bytes")
    if any(unicodedata.category(c) == "Cc" for c in key):
        raise InvalidKey("the key contains a control character")
    if found := bidi_controls(key):
        raise InvalidKey(f"the key contains a bidirectional control character ({', '.join(found)})")
    if "\\" in key:
        raise InvalidKey("the key contains a backslash")
    if key.startswith("/"):
        raise InvalidKey("the key starts with '/'")
    if key.startswith(RESERVED_PREFIX) or key == "_":
        raise InvalidKey("the prefix '_/' is reserved for the service")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKey("the key has an empty, '.' or '..' segment")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidKey(f"a key segment is longer than {MAX_SEGMENT_BYTES} bytes")
    return key


def cache_tag(key: str) -> str:
    """The key as a purge tag: percent-encoded so commas and spaces cannot split it."""
    return quote(key, safe="/")
