"""Query string -> TransformSpec (pure; no I/O).

One table maps each imgix parameter to a tiny parser; anything not in the table is a
400 that names it. Values are accepted only in canonical ASCII decimal, so `w=1e3`,
`w=00100` or Arabic-Indic digits never become a second spelling of one variant.
Sizes past the output cap are clamped here, so the clamped value is what the cache
key holds and no unbounded set of variants can be minted.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import DuplicateParam, InvalidParam, ParamOutOfRange, UnknownParam
from .formats import OUTPUT_FORMATS
from .keys import bidi_controls, validate_key
from .spec import Color, TransformSpec

IGNORED = frozenset({"ixlib"})
"""Parameters that imgix client libraries add to every URL: accepted, never part of a variant."""

_MAX_DIGITS = 18
"""Longer integers are out of every range; Python refuses to parse past 4300 digits."""
_SIZE_CEILING = 1e9
"""Sizes are clamped to the output cap later; this keeps an overflowing `inf` out of the maths."""
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)", re.ASCII)
_HEX = re.compile(r"[0-9a-fA-F]+", re.ASCII)
_POSITIONS = frozenset({"top", "bottom", "left", "right"})
_SMART = frozenset({"entropy", "edges", "focalpoint"})
_ALIGN_V = frozenset({"top", "middle", "bottom"})
_ALIGN_H = frozenset({"left", "center", "right"})
FITS = ("clip", "max", "min", "crop", "fill", "fillmax", "scale", "clamp")


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """The caps that parsing clamps to (from settings)."""

    max_side: int = 4096
    max_dpr: float = 4.0


def _decimal(name: str, raw: str) -> float:
    if not _DECIMAL.fullmatch(raw):
        raise InvalidParam(f"{name} must be a decimal number, got {raw[:32]!r}")
    return float(raw)


def _integer(name: str, raw: str, low: int, high: int) -> int:
    if not _INTEGER.fullmatch(raw):
        raise InvalidParam(f"{name} must be an integer, got {raw[:32]!r}")
    value = int(raw) if len(raw) <= _MAX_DIGITS else high + 1
    if not low <= value <= high:
        raise ParamOutOfRange(f"{name} must be between {low} and {high}")
    return value


def _ranged(low: int, high: int) -> Callable[[str, str], int]:
    return lambda name, raw: _integer(name, raw, low, high)


def _ranged_decimal(low: float, high: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        value = _decimal(name, raw)
        if not low <= value <= high:
            raise ParamOutOfRange(f"{name} must be between {low:g} and {high:g}")
        return round(value, 6)

    return parse


def _size(name: str, raw: str) -> float:
    """Pixels when >= 1 (rounded to whole pixels), a share of the source when in (0, 1).

    Shares keep six decimals and stay shares: 0.9999999 is 0.999999, never 1 pixel,
    and a share that rounds to 0 is refused like 0 itself.
    """
    value = min(_decimal(name, raw), _SIZE_CEILING)
    if value >= 1:
        return float(int(value + 0.5))
    share = min(round(value, 6), 0.999999)
    if share <= 0:
        raise InvalidParam(f"{name} must be a positive number of pixels or a fraction in (0, 1)")
    return share


def _choice(options: Iterable[str]) -> Callable[[str, str], str]:
    allowed = tuple(options)

    def parse(name: str, raw: str) -> str:
        if raw not in allowed:
            raise InvalidParam(f"{name} must be one of {', '.join(allowed)}")
        return raw

    return parse


def _boolean(name: str, raw: str) -> bool:
    if raw in ("1", "true"):
        return True
    if raw in ("0", "false"):
        return False
    raise InvalidParam(f"{name} must be true or false (1 or 0)")


def _color(name: str, raw: str) -> Color:
    """imgix colours: hex RGB, ARGB, RRGGBB or AARRGGBB (alpha first), with or without '#'."""
    text = raw[1:] if raw.startswith("#") else raw
    if not _HEX.fullmatch(text) or len(text) not in (3, 4, 6, 8):
        raise InvalidParam(f"{name} must be a hex colour (RGB, ARGB, RRGGBB or AARRGGBB)")
    if len(text) in (3, 4):
        text = "".join(c * 2 for c in text)
    if len(text) == 6:
        text = "ff" + text
    a, r, g, b = (int(text[i : i + 2], 16) for i in range(0, 8, 2))
    return (r, g, b, a)


def _word_list(name: str, raw: str, allowed: frozenset[str]) -> tuple[str, ...]:
    words = [w.strip() for w in raw.split(",")]
    unknown = [w for w in words if w not in allowed]
    if unknown or not words:
        raise InvalidParam(f"{name} accepts {', '.join(sorted(allowed))}")
    return tuple(sorted(set(words)))


def _crop(name: str, raw: str) -> tuple[str, ...]:
    words = _word_list(name, raw, _POSITIONS | _SMART)
    if {"top", "bottom"} <= set(words) or {"left", "right"} <= set(words):
        raise InvalidParam(f"{name} cannot combine opposite sides")
    if len(_SMART.intersection(words)) > 1:
        raise InvalidParam(f"{name} takes at most one of entropy, edges, focalpoint")
    return words


def _mark_align(name: str, raw: str) -> tuple[str, ...]:
    words = _word_list(name, raw, _ALIGN_V | _ALIGN_H)
    if len(_ALIGN_V.intersection(words)) > 1 or len(_ALIGN_H.intersection(words)) > 1:
        raise InvalidParam(f"{name} takes at most one vertical and one horizontal alignment")
    return words


def _auto(name: str, raw: str) -> tuple[str, ...]:
    return _word_list(name, raw, frozenset({"format", "compress"}))


def _ratio(name: str, raw: str) -> float:
    left, sep, right = raw.partition(":")
    if not sep:
        raise InvalidParam(f"{name} must be W:H, e.g. 16:9")
    width, height = _decimal(name, left), _decimal(name, right)
    if width <= 0 or height <= 0:
        raise InvalidParam(f"{name} must be W:H with positive numbers")
    ratio = width / height
    if not 0.01 <= ratio <= 100:
        raise ParamOutOfRange(f"{name} must be between 1:100 and 100:1")
    return round(ratio, 6)


def _rect(name: str, raw: str) -> tuple[int, int, int, int]:
    parts = raw.split(",")
    if len(parts) != 4:
        raise InvalidParam(f"{name} must be x,y,w,h in pixels")
    x, y, w, h = (_integer(name, p, 0, 1_000_000) for p in parts)
    if w == 0 or h == 0:
        raise InvalidParam(f"{name} must have a positive width and height")
    return (x, y, w, h)


def _rotation(name: str, raw: str) -> int:
    value = _integer(name, raw, 0, 359)
    if value % 90:
        raise InvalidParam(f"{name} must be 0, 90, 180 or 270")
    return value


def _mark(name: str, raw: str) -> str:
    return validate_key(raw)


def _filename(name: str, raw: str) -> str:
    if not raw or len(raw) > 255 or any(unicodedata.category(c) == "Cc" for c in raw):
        raise InvalidParam(f"{name} must be a file name of 1 to 255 printable characters")
    if found := bidi_controls(raw):
        raise InvalidParam(f"{name} contains a bidirectional control character ({', '.join(found)})")
    return raw


def _hue(name: str, raw: str) -> int:
    return _integer(name, raw, -359, 359) % 360


_PARSERS: dict[str, Callable[[str, str], object]] = {
    "w": _size,
    "h": _size,
    "dpr": _ranged_decimal(0.01, 1000),
    "ar": _ratio,
    "fit": _choice(FITS),
    "crop": _crop,
    "fp-x": _ranged_decimal(0, 1),
    "fp-y": _ranged_decimal(0, 1),
    "fp-z": _ranged_decimal(1, 100),
    "rect": _rect,
    "pad": _ranged(0, 2048),
    "trim": _choice(("auto", "color")),
    "trim-color": _color,
    "trim-tol": _ranged(0, 255),
    "rot": _rotation,
    "flip": _choice(("h", "v", "hv")),
    "bg": _color,
    "fill": _choice(("solid", "blur")),
    "fill-color": _color,
    "blur": _ranged(0, 2000),
    "sharp": _ranged(0, 100),
    "bri": _ranged(-100, 100),
    "con": _ranged(-100, 100),
    "sat": _ranged(-100, 100),
    "gam": _ranged(-100, 100),
    "hue": _hue,
    "sepia": _ranged(0, 100),
    "monochrome": _color,
    "invert": _boolean,
    "fm": _choice(OUTPUT_FORMATS),
    "q": _ranged(1, 100),
    "lossless": _boolean,
    "auto": _auto,
    "mark": _mark,
    "mark-align": _mark_align,
    "mark-alpha": _ranged(0, 100),
    "mark-scale": _ranged(1, 100),
    "mark-pad": _ranged(0, 2048),
    "dl": _filename,
}

_FIELD = {name: name.replace("-", "_") for name in _PARSERS}


def parse_query(pairs: Iterable[tuple[str, str]], limits: OutputLimits = OutputLimits()) -> TransformSpec:
    """Parse (name, value) pairs into a canonical, clamped TransformSpec.

    Raises UnknownParam, DuplicateParam, InvalidParam or ParamOutOfRange naming the
    parameter. Order does not matter; `ixlib` is ignored.
    """
    values: dict[str, object] = {}
    for name, raw in pairs:
        if name in IGNORED:
            continue
        parser = _PARSERS.get(name)
        if parser is None:
            raise UnknownParam(f"unknown parameter {name[:64]!r}")
        field = _FIELD[name]
        if field in values:
            raise DuplicateParam(f"parameter {name!r} is given more than once")
        values[field] = parser(name, raw)
    if values.get("trim") == "color" and "trim_color" not in values:
        raise InvalidParam("trim=color needs trim-color")
    spec = TransformSpec(**values)  # type: ignore[arg-type]
    return _clamp_sizes(_drop_inert(spec), limits)


def _drop_inert(spec: TransformSpec) -> TransformSpec:
    """Forget parameters that cannot change the image, so they cannot mint new variants.

    `ar` acts only with fit=crop, and the focal point only with crop=focalpoint.
    """
    defaults = TransformSpec()
    if spec.fit != "crop" and spec.ar is not None:
        spec = dataclasses.replace(spec, ar=None)
    if "focalpoint" not in spec.crop:
        spec = dataclasses.replace(spec, fp_x=defaults.fp_x, fp_y=defaults.fp_y, fp_z=defaults.fp_z)
    return spec


def _clamp_sizes(spec: TransformSpec, limits: OutputLimits) -> TransformSpec:
    """Fold `dpr` into pixel sizes and clamp them to the output cap, keeping their ratio.

    With a fractional size the dpr cannot be folded before the source is known, so it
    stays (capped at max_dpr) and a pixel size beside it is clamped alone; without any
    size it has nothing to scale and is dropped.
    """
    dpr = min(spec.dpr, limits.max_dpr)
    w, h = spec.w, spec.h
    fractional = (w is not None and w < 1) or (h is not None and h < 1)
    if fractional:
        w = None if w is None else min(w, float(limits.max_side))
        h = None if h is None else min(h, float(limits.max_side))
        return dataclasses.replace(spec, w=w, h=h, dpr=round(dpr, 6))
    if w is None and h is None:
        return dataclasses.replace(spec, dpr=1.0)
    w = None if w is None else w * dpr
    h = None if h is None else h * dpr
    largest = max(v for v in (w, h) if v is not None)
    k = min(1.0, limits.max_side / largest)
    w = None if w is None else float(max(1, int(w * k + 0.5)))
    h = None if h is None else float(max(1, int(h * k + 0.5)))
    return dataclasses.replace(spec, w=w, h=h, dpr=1.0)
