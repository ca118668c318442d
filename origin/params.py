"""Query string -> TransformSpec (pure; no I/O).

The parameter table (`origin.urlparams`, one module per family) maps each imgix
parameter to a tiny parser. Before the table is consulted, every spelling imgix accepts
is reduced to the canonical name: the spec's aliases (`width` -> `w`, `m` -> `mark`) and
the Base64 variants (`txt64`: the name plus `64`, its value URL-safe Base64). So `w=` and
`width=` are one variant, one cache entry and one ETag, and a name given twice under two
spellings is a duplicate. Anything outside imgix's spec is a 400 that names it.
Sizes past the output cap are clamped here, so the clamped value is what the cache key
holds and no unbounded set of variants can be minted.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import DuplicateParam, InvalidParam, UnknownParam, UnsupportedParam
from .spec import TransformSpec
from .urlparams import FAMILIES, REFUSED, TABLE, density
from .urlparams.imgix import ALIASES, KNOWN, NAMES, NO_BASE64
from .urlparams.text import TextLimits
from .urlparams.text import bound as bound_text

IGNORED = frozenset({"ixlib"})
"""Parameters that imgix client libraries add to every URL: accepted, never part of a variant."""

READ_BEFORE_PARSING = frozenset({"expires"})
"""imgix parameters that access.py takes out of the query (they never reach the spec)."""


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """The caps that parsing clamps to (`max_output_side`, `max_dpr`; made by `Settings.configs()`)."""

    max_side: int
    max_dpr: float
    text: TextLimits


def canonical_name(name: str) -> tuple[str, bool]:
    """(imgix's canonical name, whether the value is Base64) for any spelling imgix accepts.

    A name that is none of them comes back unchanged, to be refused by the caller.
    """
    if name in KNOWN:
        return name, False
    if name in ALIASES:
        return ALIASES[name], False
    if name.endswith("64"):
        base = name[:-2]
        resolved = ALIASES.get(base, base)
        if resolved in KNOWN and resolved not in NO_BASE64:
            return resolved, True
    return name, False


def _from_base64(name: str, raw: str) -> str:
    """imgix's Base64 variants: URL-safe alphabet, padding optional, UTF-8 inside."""
    try:
        data = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True)
        return data.decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidParam(f"{name[:64]} must be URL-safe Base64 of UTF-8 text") from None


def parse_query(pairs: Iterable[tuple[str, str]], limits: OutputLimits) -> TransformSpec:
    """Parse (name, value) pairs into a canonical, clamped TransformSpec.

    Raises UnknownParam, UnsupportedParam, DuplicateParam, InvalidParam or ParamOutOfRange
    naming the parameter. Order does not matter; `ixlib` is ignored.
    """
    values: dict[str, object] = {}
    spelled: dict[str, str] = {}
    for given, raw in pairs:
        if given in IGNORED:
            continue
        name, encoded = canonical_name(given)
        param = TABLE.get(name)
        if param is None:
            raise _refusal(name, given)
        if name in spelled:
            also = "" if spelled[name] == given else f" (as {spelled[name]!r} and {given[:64]!r})"
            raise DuplicateParam(f"parameter {name!r} is given more than once{also}")
        spelled[name] = given
        values[param.field] = param.parse(name, _from_base64(given, raw) if encoded else raw)
    spec = TransformSpec(**values)  # type: ignore[arg-type]
    for family in FAMILIES:
        spec = family.finish(spec)
    return _clamp_sizes(bound_text(_fold_density(spec, limits), limits.text), limits)


def _fold_density(spec: TransformSpec, limits: OutputLimits) -> TransformSpec:
    """`dpr` acts only with `w` or `h` (imgix); then on every length in output pixels, not on
    those two alone (urlparams/density.py). Beside a share of the source (`w=0.5`) it stays in
    the spec, and the renderer folds it into the other lengths."""
    if (spec.w is None and spec.h is None) or _fractional(spec):
        return spec
    return density.fold(spec, min(spec.dpr, limits.max_dpr))


def _fractional(spec: TransformSpec) -> bool:
    return (spec.w is not None and spec.w < 1) or (spec.h is not None and spec.h < 1)


def _refusal(name: str, given: str) -> Exception:
    if name in REFUSED:
        return UnsupportedParam(f"{name} is not supported: {REFUSED[name]}")
    if name in READ_BEFORE_PARSING:
        return InvalidParam(f"{name} belongs in the URL itself, not in a preset")
    if name in NAMES:
        return UnsupportedParam(f"{name} is not supported yet")
    return UnknownParam(f"unknown parameter {given[:64]!r}")


def _clamp_sizes(spec: TransformSpec, limits: OutputLimits) -> TransformSpec:
    """Fold `dpr` into pixel sizes and clamp them to the output cap, keeping their ratio.

    With a fractional size the dpr cannot be folded before the source is known, so it
    stays (capped at max_dpr) and a pixel size beside it is clamped alone; without any
    size it has nothing to scale and is dropped.
    """
    dpr = min(spec.dpr, limits.max_dpr)
    w, h = spec.w, spec.h
    if _fractional(spec):
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
