"""What a request asks for, and whether it may: presets, signatures, presets-only, width ladder.

Pure, and run before storage or any cache is touched, so a forged or disallowed URL
costs nothing but this. `read_query` is memoised per raw query string (it depends on
nothing else); `authorize` runs per request because expiry depends on the clock.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .errors import DuplicateParam, InvalidParam, NotFound, ParamsNotAllowed, UnknownPreset
from .hints import hinted, vary
from .params import OutputLimits, canonical_name, parse_query
from .presets import PresetBook, expand, snap_width
from .signing import Signer, verify, without_signature
from .spec import TransformSpec, canonical

_EXPIRES = re.compile(r"[0-9]{1,12}", re.ASCII)
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
    params: tuple[tuple[str, str], ...] = ()
    """The parameters the spec was parsed from (after preset expansion), for client hints."""


@dataclass(frozen=True, slots=True, eq=False)
class Access:
    """The variant policy, fixed at start (hashed by identity: it keys the memo below)."""

    book: PresetBook
    signer: Signer
    limits: OutputLimits


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
        params=tuple(params),
    )


def with_hints(asked: Asked, spec: TransformSpec, access: Access, headers: Mapping[str, str]) -> TransformSpec:
    """`spec` with the client hints its `ch` asks for filled in from the request headers."""
    if not spec.ch:
        return spec
    given = frozenset(canonical_name(name)[0] for name, _ in asked.params)
    extra = hinted(spec.ch, given, {k: headers[k] for k in vary(spec.ch) if k in headers})
    return _hinted_spec(asked.params, extra, access) if extra else spec


@functools.lru_cache(maxsize=4096)
def _hinted_spec(
    params: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...], access: Access
) -> TransformSpec:
    return parse_query(params + extra, access.limits)


def expiry(asked: Asked, now: float) -> int | None:
    """`expires` as Unix seconds, or None; a URL past it is gone (404), as imgix answers."""
    if asked.expires is None:
        return None
    if not _EXPIRES.fullmatch(asked.expires):
        raise InvalidParam("expires must be a Unix time in seconds")
    expires = int(asked.expires)
    if expires < now:
        raise NotFound("this URL has expired")
    return expires


def authorize(asked: Asked, access: Access, *, key: str, raw_path: str, now: float) -> TransformSpec:
    """The spec to serve, or NotFound once `expires` is past, or BadSignature / ParamsNotAllowed (403).

    A URL that carries `s` (or any URL, under `require_signature`) is verified and then served as
    asked; an unsigned one is held to presets-only and the width ladder.
    """
    expiry(asked, now)
    if access.signer.checks(asked.signature):
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
