"""Named variant presets from YAML (`config/presets.yaml`), validated at start (pure).

A preset is a set of the same URL parameters, so it goes through the same parser as a
URL: a preset that would be a 400 in a URL stops the process at start instead, with a
message naming the preset and the field. `warm: true` marks presets for pre-rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import OriginError
from .params import OutputLimits, parse_query

_TOP_LEVEL = frozenset({"presets", "presets_only", "allowed_widths"})


class PresetError(Exception):
    """The presets file cannot be used; the message names the preset and field."""


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    params: tuple[tuple[str, str], ...]
    warm: bool = False


@dataclass(frozen=True, slots=True)
class PresetBook:
    """Every preset, plus the variant policy that goes with them."""

    presets: Mapping[str, Preset] = field(default_factory=dict)
    presets_only: bool = False
    """Refuse free-form parameters on unsigned URLs (dpr, auto and dl stay allowed)."""
    allowed_widths: tuple[int, ...] = ()
    """A ladder: unsigned widths snap up to the next rung, and past the top to the top."""

    @property
    def warm(self) -> list[Preset]:
        return [preset for preset in self.presets.values() if preset.warm]


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; for presets a duplicate name is an error."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise PresetError(f"duplicate name {key!r} (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_presets(path: Path | None, limits: OutputLimits) -> PresetBook:
    """Read and validate the presets file; a missing default file means no presets."""
    if path is None or not path.exists():
        return PresetBook()
    try:
        document = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise PresetError(f"{path}: not valid YAML: {exc}") from None
    except PresetError as exc:
        raise PresetError(f"{path}: {exc}") from None
    try:
        return build_book(document, limits)
    except PresetError as exc:
        raise PresetError(f"{path}: {exc}") from None


def build_book(document: object, limits: OutputLimits) -> PresetBook:
    if not isinstance(document, dict):
        raise PresetError("expected a mapping with 'presets'")
    unknown = set(document) - _TOP_LEVEL
    if unknown:
        raise PresetError(f"unknown top-level field {sorted(unknown)[0]!r}")
    presets_only = document.get("presets_only", False)
    if not isinstance(presets_only, bool):
        raise PresetError("presets_only must be true or false")
    widths = document.get("allowed_widths") or []
    if not isinstance(widths, list) or not all(isinstance(w, int) and 0 < w <= limits.max_side for w in widths):
        raise PresetError(f"allowed_widths must be a list of pixel widths between 1 and {limits.max_side}")
    raw = document.get("presets") or {}
    if not isinstance(raw, dict):
        raise PresetError("presets must be a mapping of names to parameters")
    presets = {str(name): _preset(str(name), body, limits) for name, body in raw.items()}
    return PresetBook(presets=presets, presets_only=presets_only, allowed_widths=tuple(sorted(set(widths))))


def _preset(name: str, body: object, limits: OutputLimits) -> Preset:
    if not isinstance(body, dict) or not body:
        raise PresetError(f"preset {name!r}: expected a mapping of parameters")
    warm = body.get("warm", False)
    if not isinstance(warm, bool):
        raise PresetError(f"preset {name!r}, field 'warm': must be true or false")
    params = tuple((str(k), _text(v)) for k, v in body.items() if k != "warm")
    for field_name, _ in params:
        if field_name in ("preset", "s", "expires"):
            raise PresetError(f"preset {name!r}, field {field_name!r}: not allowed inside a preset")
    for pair in params:
        try:
            parse_query([pair], limits)
        except OriginError as exc:
            raise PresetError(f"preset {name!r}, field {pair[0]!r}: {exc.message}") from None
    return Preset(name=name, params=params, warm=warm)


def _text(value: object) -> str:
    """YAML scalars as the URL would spell them (`true` -> 1, lists -> a,b)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def expand(preset: Preset, explicit: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The preset's parameters refined by the URL's explicit ones (the URL wins)."""
    explicit = list(explicit)
    named = {name for name, _ in explicit}
    return [pair for pair in preset.params if pair[0] not in named] + explicit


def snap_width(width: float, ladder: tuple[int, ...]) -> int:
    """The smallest rung at or above `width`; the top rung for anything larger."""
    for rung in ladder:
        if rung >= width:
            return rung
    return ladder[-1]
