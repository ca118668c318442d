"""`border`: a frame of one colour drawn over the output's edges, inside its size (as `pad`
lies inside it, so `w` stays the width a srcset promised). `border-top`... override the width
per side; `border-radius` rounds the outer corners (outside them is transparent, or `bg`
where the format has no alpha) and `border-radius-inner` the frame's inner edge."""

from __future__ import annotations

import pyvips

from ..spec import TransformSpec
from . import shapes


def sides(spec: TransformSpec) -> tuple[int, int, int, int]:
    assert spec.border is not None
    width = spec.border[0]
    given = (spec.border_top, spec.border_right, spec.border_bottom, spec.border_left)
    return tuple(width if side is None else side for side in given)  # type: ignore[return-value]


def draw(image: pyvips.Image, spec: TransformSpec) -> pyvips.Image:
    assert spec.border is not None
    w, h = image.width, image.height
    base = shapes.with_alpha(image)
    inside = shapes.rounded_rect(w, h, spec.border_radius_inner or (0, 0, 0, 0), sides(spec)) / 255
    layer = base.new_from_image(list(spec.border[1]))
    framed = (base * inside + layer * (1 - inside)).cast("uchar").copy(interpretation="srgb")
    if spec.border_radius:
        return shapes.apply_coverage(framed, shapes.rounded_rect(w, h, spec.border_radius))
    return framed if image.hasalpha() else framed.extract_band(0, n=3)
