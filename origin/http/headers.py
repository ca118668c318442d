"""Pure helpers for response headers: conditionals, ranges, tags, downloads, timing."""

from __future__ import annotations

import re
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import quote

from ..errors import RangeNotSatisfiable


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


def quoted(etag: str) -> str:
    return f'"{etag}"'


def not_modified(if_none_match: str | None, if_modified_since: str | None, etag: str, modified: float) -> bool:
    """RFC 9110: If-None-Match (weak comparison) wins; If-Modified-Since only without it."""
    if if_none_match is not None:
        for candidate in if_none_match.split(","):
            tag = candidate.strip()
            if tag == "*" or tag.removeprefix("W/") == quoted(etag):
                return True
        return False
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return int(modified) <= since
    return False


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single `bytes=` range to serve as (start, end inclusive), or None for the whole body.

    Multiple ranges and malformed headers are answered with the whole body, as RFC 9110
    allows; a syntactically valid range that lies past the end is a 416. Positions are
    ASCII digits only (RFC 9110's DIGIT): `str.isdigit` also accepts `²` (which `int`
    refuses) and `١` (which `int` reads as 1). `bytes=-` names no range: ignored.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, sep, last = header[6:].strip().partition("-")
    if not sep or not (_digits(first) or first == "") or not (_digits(last) or last == "") or first == last == "":
        return None
    if first == "":
        if int(last) == 0:
            raise RangeNotSatisfiable("the requested range is empty", headers={"Content-Range": f"bytes */{size}"})
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable("the requested range lies past the end", headers={"Content-Range": f"bytes */{size}"})
    return start, end


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the UTF-8 name (RFC 6266), nothing injectable."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\;' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def server_timing(timings: dict[str, float], cache: str) -> str:
    parts = [f'cache;desc="{cache}"']
    parts += [f"{name};dur={seconds * 1000:.1f}" for name, seconds in timings.items()]
    return ", ".join(parts)


_AGE = re.compile(r"\b(max-age|s-maxage)=([0-9]+)")
_STALE = re.compile(r",?\s*stale-(while-revalidate|if-error)=[0-9]+")


def bounded_cache_control(value: str, remaining: int) -> str:
    """`value` with every max-age / s-maxage cut to `remaining` seconds, and the stale-*
    allowances dropped: a URL with `expires` must not be served from a cache past it."""
    remaining = max(0, remaining)
    bounded = _AGE.sub(lambda m: f"{m.group(1)}={min(int(m.group(2)), remaining)}", value)
    bounded = _STALE.sub("", bounded).strip().lstrip(",").strip()
    return bounded if "max-age" in bounded else f"{bounded}, max-age={remaining}".lstrip(", ")
