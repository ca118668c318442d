"""The text and typesetting families: `txt` and every `txt-*` (drawn by render/text.py).

`txt` may hold newlines (each one a line); other control characters are refused. Its
length, line count and font size are bounded by settings (`bound`, run by the parser
with the output limits), so a URL cannot ask for an unbounded layout.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass

from ..errors import InvalidParam, ParamOutOfRange
from ..spec import TransformSpec
from .imgix import SPEC
from .table import Family, Param
from .values import Parser, alignment, clamped, clamped_decimal, color, word_list


@dataclass(frozen=True, slots=True)
class TextLimits:
    """What one URL may ask of the text renderer (settings `max_text_chars`, `max_text_lines`,
    `max_text_size`)."""

    max_chars: int
    max_lines: int
    max_size: int


FONT_NAMES: dict[str, str] = {name.lower(): name for name in SPEC["fontValues"]}
"""imgix's font names (lower case -> imgix's spelling); render/text.py maps each onto a shipped face."""
HARD_MAX_CHARS = 4096
"""Past any sensible `max_text_chars`: refused before the setting is even consulted."""
COVERED: tuple[tuple[int, int], ...] = (
    (0x20, 0x7E), (0xA0, 0x17F), (0x192, 0x192), (0x2C6, 0x2C7), (0x2DC, 0x2DC), (0x2010, 0x2027),
    (0x2030, 0x203A), (0x20AC, 0x20AC), (0x2122, 0x2122),
)  # fmt: skip
"""The code points the shipped fonts draw (origin/render/fonts/README.md)."""
_CLIP_AT = frozenset({"start", "middle", "end"})


def drawable(name: str, text: str) -> str:
    """The text, unless it holds a character the shipped fonts lack: drawing it would fall
    back to whatever fonts the machine has, and the same URL would differ between machines."""
    for char in text:
        if char != "\n" and not any(low <= ord(char) <= high for low, high in COVERED):
            raise InvalidParam(f"{name}: the shipped fonts cannot draw {char!r} (U+{ord(char):04X}); Latin text only")
    return text


def txt(name: str, raw: str) -> str:
    if len(raw) > HARD_MAX_CHARS:
        raise ParamOutOfRange(f"{name} may be at most {HARD_MAX_CHARS} characters")
    if any(unicodedata.category(c) == "Cc" and c != "\n" for c in raw):
        raise InvalidParam(f"{name} may hold newlines but no other control characters")
    return drawable(name, raw)


def font(name: str, raw: str) -> str:
    spelled = FONT_NAMES.get(raw.strip().lower())
    if spelled is None:
        raise InvalidParam(
            f"{name} must be one of imgix's font names (serif, sans-serif, monospace, Helvetica,Bold...)"
        )
    return spelled


def clip(name: str, raw: str) -> tuple[str, ...]:
    words = word_list(name, raw, _CLIP_AT | {"ellipsis"})
    if len(_CLIP_AT.intersection(words)) > 1:
        raise InvalidParam(f"{name} takes at most one of start, middle, end")
    return words if _CLIP_AT.intersection(words) else tuple(sorted({*words, "end"}))


def _one_of(*allowed: int) -> Parser:
    def parse(name: str, raw: str) -> int:
        if raw not in {str(a) for a in allowed}:
            raise InvalidParam(f"{name} must be one of {', '.join(map(str, allowed))}")
        return int(raw)

    return parse


def txt_fit(name: str, raw: str) -> str:
    if raw != "max":
        raise InvalidParam(f"{name} must be max")
    return raw


_FIELDS = tuple(f.name for f in dataclasses.fields(TransformSpec) if f.name.startswith("txt_"))


def finish(spec: TransformSpec) -> TransformSpec:
    """Without `txt` the rest is inert; `txt-line-color` acts only with an outline, `txt-width`
    0 is no width."""
    if spec.txt is None or not spec.txt.strip():
        return spec.forget("txt", *_FIELDS)
    if spec.txt_line == 0:
        spec = spec.forget("txt_line_color")
    if spec.txt_width == 0:
        spec = spec.forget("txt_width")
    return spec


def bound(spec: TransformSpec, limits: TextLimits) -> TransformSpec:
    """The settings' limits: a longer text or more lines is refused, a larger size clamped
    (it is a suggested range)."""
    if spec.txt is None:
        return spec
    if len(spec.txt) > limits.max_chars:
        raise ParamOutOfRange(f"txt may be at most {limits.max_chars} characters (max_text_chars)")
    if spec.txt.count("\n") + 1 > limits.max_lines:
        raise ParamOutOfRange(f"txt may have at most {limits.max_lines} lines (max_text_lines)")
    return dataclasses.replace(spec, txt_size=min(spec.txt_size, limits.max_size))


txt.schema = {"type": "string", "maxLength": 500, "description": "text; newlines make lines (max_text_chars)"}  # type: ignore[attr-defined]
font.schema = {"type": "string", "enum": sorted(FONT_NAMES.values())}  # type: ignore[attr-defined]
clip.schema = {"type": "string", "description": "start, middle or end, optionally with ellipsis"}  # type: ignore[attr-defined]
txt_fit.schema = {"type": "string", "enum": ["max"]}  # type: ignore[attr-defined]

FAMILY = Family(
    "text",
    params=(
        Param("txt", txt),
        Param("txt-font", font),
        Param("txt-size", clamped(1, 100_000)),
        Param("txt-color", color),
        Param("txt-align", alignment),
        Param("txt-pad", clamped(0, 2048)),
        Param("txt-width", clamped(0, 8192)),
        Param("txt-fit", txt_fit),
        Param("txt-clip", clip),
        Param("txt-lig", _one_of(0, 1, 2)),
        Param("txt-line", clamped(0, 64)),
        Param("txt-line-color", color),
        Param("txt-shad", clamped_decimal(0, 10)),
        Param("txt-lead", clamped(0, 1000)),
        Param("txt-track", clamped(-4, 200)),
    ),
    finish=finish,
)
