"""What a request asks for, and whether it may: presets, signatures, presets-only, width ladder.

Pure, and run before storage or any cache is touched, so a forged or disallowed URL
costs nothing but this. `read_query` is memoised per raw query string (it depends on
nothing else); `authorize` runs per request because expiry depends on the clock.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .errors import DuplicateParam, ParamsNotAllowed, UnknownPreset
from .params import OutputLimits, parse_query
from .presets import PresetBook, expand, snap_width
from .signing import Signer, verify, without_signature
from .spec import TransformSpec, canonical

ALWAYS_ALLOWED = frozenset({"preset", "dpr", "auto", "dl", "s", "expires", "ixlib"})
"""Parameters a presets-only origin still accepts on unsigned URLs."""


@dataclass(frozen=True, slots=True)
class Asked:
    spec: TransformSpec
    free_form: bool
    """Parameters other than a preset and ALWAYS_ALLOWED were given."""
    signature: str | None
    expires: str | None
    query_without_s: str


@dataclass(frozen=True, slots=True, eq=False)
class Access:
    """The variant policy, fixed at start (hashed by identity: it keys the memo below)."""

    book: PresetBook = PresetBook()
    signer: Signer = Signer()
    limits: OutputLimits = OutputLimits()


@functools.lru_cache(maxsize=4096)
def read_query(raw_query: str, access: Access) -> Asked:
    """Parse a raw query string: pull out `s`/`expires`, expand a preset, parse the rest."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    reserved: dict[str, str] = {}
    params: list[tuple[str, str]] = []
    for name, value in pairs:
        if name in ("s", "expires", "preset"):
            if name in reserved:
                raise DuplicateParam(f"parameter {name!r} is given more than once")
            reserved[name] = value
        else:
            params.append((name, value))
    free_form = any(name not in ALWAYS_ALLOWED for name, _ in params)
    if "preset" in reserved:
        preset = access.book.presets.get(reserved["preset"])
        if preset is None:
            raise UnknownPreset(f"unknown preset {reserved['preset'][:64]!r}")
        params = expand(preset, params)
    return Asked(
        spec=parse_query(params, access.limits),
        free_form=free_form,
        signature=reserved.get("s"),
        expires=reserved.get("expires"),
        query_without_s=without_signature(raw_query),
    )


def authorize(asked: Asked, access: Access, *, key: str, raw_path: str, now: float) -> TransformSpec:
    """The spec to serve, or BadSignature / ParamsNotAllowed (403)."""
    signed = False
    if access.signer.enabled:
        verify(
            access.signer,
            signature=asked.signature,
            expires=asked.expires,
            raw_path=raw_path,
            query_without_s=asked.query_without_s,
            object_key=key,
            canonical_spec=canonical(asked.spec),
            now=now,
        )
        signed = True
    if signed:
        return asked.spec
    if access.book.presets_only and asked.free_form:
        raise ParamsNotAllowed("this origin serves named presets only; free-form parameters need a signed URL")
    ladder = access.book.allowed_widths
    if ladder and asked.spec.w is not None and asked.spec.w >= 1:
        return _snapped(asked.spec, ladder)
    return asked.spec


@functools.lru_cache(maxsize=4096)
def _snapped(spec: TransformSpec, ladder: tuple[int, ...]) -> TransformSpec:
    assert spec.w is not None
    width = snap_width(spec.w, ladder)
    if width == spec.w:
        return spec
    height = spec.h
    if height is not None and height >= 1:
        height = float(max(1, int(height * width / spec.w + 0.5)))
    return dataclasses.replace(spec, w=float(width), h=height)
