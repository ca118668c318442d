"""`border`: a frame of one colour around the image. The geometry plan makes room for it as it
does for `pad` (geometry.border_sides): without `w`/`h` it adds to the output's size, with them
the framed image fits the box (so `w` stays the width a srcset promised); here the frame is
drawn over that room. `border-top`... override the width per side; `border-radius` rounds the
outer corners (outside them is transparent, or `bg` where the format has no alpha) and
`border-radius-inner` the frame's inner edge."""

from __future__ import annotations

import pyvips

from ..geometry import border_sides
from ..spec import TransformSpec
from . import shapes


def draw(image: pyvips.Image, spec: TransformSpec) -> pyvips.Image:
    assert spec.border is not None
    w, h = image.width, image.height
    base = shapes.with_alpha(image)
    inside = shapes.rounded_rect(w, h, spec.border_radius_inner or (0, 0, 0, 0), border_sides(spec)) / 255
    layer = base.new_from_image(list(spec.border[1]))
    framed = (base * inside + layer * (1 - inside)).cast("uchar").copy(interpretation="srgb")
    if spec.border_radius:
        return shapes.apply_coverage(framed, shapes.rounded_rect(w, h, spec.border_radius))
    return framed if image.hasalpha() else framed.extract_band(0, n=3)
