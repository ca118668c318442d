"""`dpr` for every length measured in output pixels, not only `w` and `h` (pure).

imgix's `dpr` "controls the output density of your image" and acts only with `w` or `h`;
its other lengths are CSS pixels (`txt-pad` is "in device-independent pixels"), so at
`dpr=2` the text is twice as tall, and paddings, borders, offsets and overlay boxes twice
as wide, and the 2x image looks like the 1x one, only sharper. The parser folds `dpr`
into each of them as it folds it into `w` and `h`: `w=100&dpr=2&txt-size=20` and
`w=200&txt-size=40` draw the same pixels and are one variant.

A scaled value is held to the cap its parameter has at 1x (`CAPS`): those caps bound the
cost of a render in output pixels (an outline's rank window, a text layout), whatever the
density. Shares of the base image (`mark-w=0.5`) are not lengths and are left alone, as
are effect strengths (`blur`, `px`, `usmrad`...) and the source-pixel `rect` and `trim-pad`.
`min-w`... `max-h` bound `w` and `h` once dpr is in them, so they are scaled with them.
"""

from __future__ import annotations

import dataclasses

from ..spec import Color, TransformSpec

CAPS: dict[str, float] = {
    "pad": 2048, "pad_top": 2048, "pad_right": 2048, "pad_bottom": 2048, "pad_left": 2048,
    "border_top": 2048, "border_right": 2048, "border_bottom": 2048, "border_left": 2048,
    "txt_size": 100_000, "txt_pad": 2048, "txt_width": 8192, "txt_line": 64, "txt_shad": 10,
    "txt_lead": 1000, "txt_track": 200,
    "mark_pad": 2048, "mark_x": 1_000_000, "mark_y": 1_000_000, "mark_w": 8192, "mark_h": 8192,
    "blend_pad": 2048, "blend_x": 1_000_000, "blend_y": 1_000_000, "blend_w": 8192, "blend_h": 8192,
    "grid_size": 1024, "min_w": 8192, "max_w": 8192, "min_h": 8192, "max_h": 8192,
}  # fmt: skip
"""Each scaled field and the cap its parser clamps it to at 1x (urlparams/*.py)."""
_BORDER_CAP = 2048
_RADIUS_CAP = 100_000
_SHARES = frozenset({"mark_w", "mark_h", "blend_w", "blend_h"})
"""Pixels above 1, a share of the base image up to 1."""


def _active(spec: TransformSpec) -> dict[str, bool]:
    """Which families draw anything: a default of an inert family stays a default."""
    return {
        "txt": spec.txt is not None,
        "mark": spec.mark is not None,
        "blend": spec.blend is not None,
        "grid": spec.transparency is not None,
    }


def _scaled(value: float, k: float, cap: float, decimal: bool) -> float:
    if decimal:
        return min(cap, round(value * k, 2))
    return int(min(cap, round(value * k)))


def fold(spec: TransformSpec, dpr: float) -> TransformSpec:
    """Every output-pixel length of `spec` multiplied by `dpr` (1 changes nothing)."""
    if dpr == 1:
        return spec
    active = _active(spec)
    changes: dict[str, object] = {}
    for name, cap in CAPS.items():
        value = getattr(spec, name)
        family = name.split("_")[0]
        if value is None or (family in active and not active[family]):
            continue
        if name in _SHARES and value <= 1:
            continue
        if name in _SHARES:
            changes[name] = float(_scaled(value, dpr, cap, False))
        else:
            changes[name] = _scaled(value, dpr, cap, isinstance(value, float))
    if spec.border is not None:
        width, colour = spec.border
        border: tuple[int, Color] = (int(min(_BORDER_CAP, max(1, round(width * dpr)))), colour)
        changes["border"] = border
    for name in ("border_radius", "border_radius_inner", "corner_radius"):
        radii = getattr(spec, name)
        if radii is not None:
            changes[name] = tuple(int(min(_RADIUS_CAP, round(r * dpr))) for r in radii)
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]
