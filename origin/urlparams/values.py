"""Value parsers shared by every parameter family (pure).

A parser takes (parameter name, raw value) and returns the canonical value or raises
InvalidParam / ParamOutOfRange naming the parameter. Values are accepted only in
canonical ASCII decimal, so `w=1e3`, `w=00100` or Arabic-Indic digits never become a
second spelling of one variant.

imgix's spec gives each number a *strict* range (outside it imgix refuses the URL: so do
we, naming the range) or a *suggested* one (imgix accepts anything: we accept it and
clamp it to the range, so `bri=150` and `bri=100` are one variant). An open-ended
suggested range is closed by an operational cap, for the same reason.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable

from ..errors import InvalidParam, ParamOutOfRange
from ..keys import validate_key
from ..spec import Color
from .colors import KEYWORDS

Parser = Callable[[str, str], object]

_MAX_DIGITS = 18
"""Longer integers are out of every range; Python refuses to parse past 4300 digits."""
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)", re.ASCII)
_HEX = re.compile(r"[0-9a-fA-F]+", re.ASCII)


def decimal(name: str, raw: str) -> float:
    if not _DECIMAL.fullmatch(raw):
        raise InvalidParam(f"{name} must be a decimal number, got {raw[:32]!r}")
    return float(raw)


def angle(name: str, raw: str) -> float:
    """Degrees, any number imgix accepts, folded into [0, 360) with two decimals, so
    `-90`, `270` and `630` are one variant."""
    value = decimal(name, raw)
    if not math.isfinite(value):
        raise InvalidParam(f"{name} must be a number of degrees, got {raw[:32]!r}")
    return round(value % 360, 2) % 360


angle.schema = {"type": "number", "description": "degrees counter-clockwise, taken modulo 360"}  # type: ignore[attr-defined]


def integer(name: str, raw: str, low: int, high: int) -> int:
    """An integer within a strict range: outside it is a 400 naming the range."""
    if not _INTEGER.fullmatch(raw):
        raise InvalidParam(f"{name} must be an integer, got {raw[:32]!r}")
    value = int(raw) if len(raw) <= _MAX_DIGITS else high + 1
    if not low <= value <= high:
        raise ParamOutOfRange(f"{name} must be between {low} and {high}")
    return value


def ranged(low: int, high: int) -> Parser:
    """A strict integer range."""
    return lambda name, raw: integer(name, raw, low, high)


def clamped(low: int, high: int) -> Parser:
    """A suggested integer range: anything is accepted and clamped into it."""

    def parse(name: str, raw: str) -> int:
        if not _INTEGER.fullmatch(raw):
            raise InvalidParam(f"{name} must be an integer, got {raw[:32]!r}")
        value = int(raw) if len(raw) <= _MAX_DIGITS else (high if raw[0] != "-" else low)
        return max(low, min(high, value))

    return parse


def ranged_decimal(low: float, high: float) -> Parser:
    """A strict decimal range, six decimals kept."""

    def parse(name: str, raw: str) -> float:
        value = decimal(name, raw)
        if not low <= value <= high:
            raise ParamOutOfRange(f"{name} must be between {low:g} and {high:g}")
        return round(value, 6)

    return parse


def clamped_decimal(low: float, high: float, places: int = 2) -> Parser:
    """A suggested decimal range: accepted, clamped, rounded to `places` decimals."""

    def parse(name: str, raw: str) -> float:
        return round(max(low, min(high, decimal(name, raw))), places)

    return parse


def choice(options: Iterable[str]) -> Parser:
    allowed = tuple(options)

    def parse(name: str, raw: str) -> str:
        if raw not in allowed:
            raise InvalidParam(f"{name} must be one of {', '.join(allowed)}")
        return raw

    return parse


def boolean(name: str, raw: str) -> bool:
    if raw in ("1", "true"):
        return True
    if raw in ("0", "false"):
        return False
    raise InvalidParam(f"{name} must be true or false (1 or 0)")


def color(name: str, raw: str) -> Color:
    """imgix colours: hex RGB, ARGB, RRGGBB or AARRGGBB (alpha first), with or without '#',
    or one of the CSS colour keywords imgix lists (`red`, `transparent`...)."""
    keyword = KEYWORDS.get(raw.lower())
    if keyword is not None:
        return keyword
    text = raw[1:] if raw.startswith("#") else raw
    if not _HEX.fullmatch(text) or len(text) not in (3, 4, 6, 8):
        raise InvalidParam(f"{name} must be a hex colour (RGB, ARGB, RRGGBB or AARRGGBB) or a colour keyword")
    if len(text) in (3, 4):
        text = "".join(c * 2 for c in text)
    if len(text) == 6:
        text = "ff" + text
    a, r, g, b = (int(text[i : i + 2], 16) for i in range(0, 8, 2))
    return (r, g, b, a)


def color_pair(name: str, raw: str) -> tuple[Color, Color]:
    parts = raw.split(",")
    if len(parts) != 2:
        raise InvalidParam(f"{name} must be two colours separated by a comma")
    return color(name, parts[0]), color(name, parts[1])


def corners(name: str, raw: str) -> tuple[int, int, int, int]:
    """One radius for every corner, or four (top-left, top-right, bottom-right, bottom-left)."""
    parts = raw.split(",")
    if len(parts) not in (1, 4):
        raise InvalidParam(f"{name} must be one radius or four, comma-separated")
    values = [integer(name, p, 0, 100_000) for p in parts]
    tl, tr, br, bl = values * 4 if len(values) == 1 else values
    return (tl, tr, br, bl)


def word_list(name: str, raw: str, allowed: frozenset[str]) -> tuple[str, ...]:
    words = [w.strip() for w in raw.split(",")]
    unknown = [w for w in words if w not in allowed]
    if unknown or not words:
        raise InvalidParam(f"{name} accepts {', '.join(sorted(allowed))}")
    return tuple(sorted(set(words)))


ALIGN_V = frozenset({"top", "middle", "bottom"})
ALIGN_H = frozenset({"left", "center", "right"})


def alignment(name: str, raw: str) -> tuple[str, ...]:
    """Where an overlay sits (`mark-align`, `txt-align`, `blend-align`): at most one vertical
    and one horizontal word."""
    words = word_list(name, raw, ALIGN_V | ALIGN_H)
    if len(ALIGN_V.intersection(words)) > 1 or len(ALIGN_H.intersection(words)) > 1:
        raise InvalidParam(f"{name} takes at most one vertical and one horizontal alignment")
    return words


alignment.schema = {  # type: ignore[attr-defined]
    "type": "string",
    "description": "comma-separated: one of top, middle, bottom and one of left, center, right",
    "examples": ["bottom,right"],
}


def sides(name: str, raw: str, allowed: frozenset[str]) -> tuple[str, ...]:
    """A word list of `allowed` (sides and more) that names no two opposite sides."""
    words = word_list(name, raw, allowed)
    if {"top", "bottom"} <= set(words) or {"left", "right"} <= set(words):
        raise InvalidParam(f"{name} cannot combine opposite sides")
    return words


def storage_key(name: str, raw: str) -> str:
    """Another image in the same storage: a key, never a URL (the origin fetches no URLs)."""
    if "://" in raw or raw.startswith("//"):
        raise InvalidParam(f"{name} must be a storage key, not a URL")
    return validate_key(raw)


def text(max_length: int) -> Parser:
    def parse(name: str, raw: str) -> str:
        if not raw or len(raw) > max_length or any(unicodedata.category(c) == "Cc" for c in raw):
            raise InvalidParam(f"{name} must be 1 to {max_length} printable characters")
        return raw

    return parse
