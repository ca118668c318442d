"""Output details (chroma subsampling, palette size, colour profile, density), colour
palettes, the focal-point debug overlay and client hints."""

from __future__ import annotations

import re

from ..errors import InvalidParam, UnsupportedParam
from ..spec import TransformSpec
from .table import Family, Param
from .values import boolean, choice, clamped, word_list

HINTS = frozenset({"width", "dpr", "save-data"})
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", re.ASCII)


def chromasub(name: str, raw: str) -> int:
    if raw not in ("444", "422", "420"):
        raise InvalidParam(f"{name} must be one of 444, 422, 420")
    return int(raw)


def cs(name: str, raw: str) -> str:
    if raw == "adobergb1998":
        raise UnsupportedParam("cs=adobergb1998 is not supported: no Adobe RGB profile is bundled")
    return choice(("srgb", "tinysrgb", "strip"))(name, raw)  # type: ignore[return-value]


def ch(name: str, raw: str) -> tuple[str, ...]:
    return word_list(name, raw.lower(), HINTS)


def prefix(name: str, raw: str) -> str:
    """A CSS class name prefix: letters, digits, `-` and `_`, so nothing can be injected."""
    if not _PREFIX.fullmatch(raw):
        raise InvalidParam(f"{name} must be a CSS identifier (letters, digits, - and _; up to 64)")
    return raw


def finish(spec: TransformSpec) -> TransformSpec:
    """`colors` and `prefix` act only with a palette (prefix only with palette=css);
    fp-debug only where the focal point is used (fit=crop&crop=focalpoint)."""
    if spec.palette is None:
        spec = spec.forget("colors")
    if spec.palette != "css":
        spec = spec.forget("prefix")
    if spec.fit != "crop" or "focalpoint" not in spec.crop:
        spec = spec.forget("fp_debug")
    if spec.chromasub is not None and spec.fm not in (None, "jpg", "pjpg"):
        spec = spec.forget("chromasub")
    return spec


FAMILY = Family(
    "output",
    params=(
        Param("chromasub", chromasub),
        Param("colorquant", clamped(2, 256)),
        Param("cs", cs),
        Param("dpi", clamped(1, 10_000)),
        Param("palette", choice(("css", "json"))),
        Param("colors", clamped(1, 16)),
        Param("prefix", prefix),
        Param("fp-debug", boolean),
        Param("ch", ch),
    ),
    finish=finish,
)
