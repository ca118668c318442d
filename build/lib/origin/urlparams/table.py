"""The parameter table: what a family module declares, and the one table they make together.

A family (one module each: `core`, `layout`...) lists its parameters with their parsers,
the parameters it refuses with a reason, and a `finish` step that applies its defaults
and dependencies to the parsed spec. `FAMILIES` in `__init__` assembles them; a test
checks that together they cover imgix's spec exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..spec import TransformSpec
from .values import Parser


@dataclass(frozen=True, slots=True)
class Param:
    """One supported imgix parameter, stored in the TransformSpec field of the same name."""

    name: str
    parse: Parser

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")


def _unchanged(spec: TransformSpec) -> TransformSpec:
    return spec


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    params: tuple[Param, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)
    """Parameter -> why it is refused (a 400 `unsupported_param` quoting the reason)."""
    finish: Callable[[TransformSpec], TransformSpec] = _unchanged
    """Defaults and dependencies: forget what cannot act (so it mints no variant), refuse what
    cannot work. Runs after every value is parsed, in family order."""
