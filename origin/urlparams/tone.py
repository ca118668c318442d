"""Adjustments beyond the core ones, stylize, noise reduction."""

from __future__ import annotations

from ..spec import TransformSpec
from .table import Family, Param
from .values import clamped, clamped_decimal, color_pair, ranged

DEFAULT_NRS = 20
"""`nrs` when `nr` is given without it (imgix's default)."""


def finish(spec: TransformSpec) -> TransformSpec:
    """`usmrad` acts only with `usm`, `duotone-alpha` only with `duotone`; `nr` only above 0, and
    `nrs` only beside it (its default, 20, is the same variant as none)."""
    if not spec.usm:
        spec = spec.forget("usmrad")
    if (spec.nr or 0) <= 0:
        spec = spec.forget("nr", "nrs")
    elif spec.nrs == DEFAULT_NRS:
        spec = spec.forget("nrs")  # the default written out: the same variant
    if spec.duotone is None:
        spec = spec.forget("duotone_alpha")
    return spec


FAMILY = Family(
    "tone",
    params=(
        Param("exp", clamped(-100, 100)),
        Param("high", clamped(-100, 0)),
        Param("shad", clamped_decimal(0, 100)),
        Param("vib", clamped(-100, 100)),
        Param("usm", clamped(-100, 100)),
        Param("usmrad", clamped_decimal(0.1, 500)),
        Param("px", clamped(0, 100)),
        Param("htn", clamped(0, 100)),
        Param("duotone", color_pair),
        Param("duotone-alpha", ranged(0, 100)),
        Param("nr", clamped(-100, 100)),
        Param("nrs", clamped(-100, 100)),
    ),
    finish=finish,
)
