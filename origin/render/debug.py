"""`fp-debug`: a red crosshair and circle where the focal point lands in the output, so
a focal point can be checked by eye."""

from __future__ import annotations

import pyvips

from ..geometry import Plan
from ..spec import TransformSpec

_INK = (255, 0, 0)


def focal_point(plan: Plan, source: tuple[int, int], spec: TransformSpec) -> tuple[int, int]:
    """The output pixel of (fp-x, fp-y) given the plan made on a `source`-sized image."""
    rx, ry, rw, rh = plan.region
    sw, sh = plan.size
    ox, oy = plan.offset
    top, _, _, left = plan.pad
    x = (spec.fp_x * source[0] - rx) * sw / rw + ox + left
    y = (spec.fp_y * source[1] - ry) * sh / rh + oy + top
    return round(x), round(y)


def draw(image: pyvips.Image, at: tuple[int, int]) -> pyvips.Image:
    x, y = at
    ink = list(_INK) + ([255] * (image.bands - 3))
    arm = max(6, min(image.width, image.height) // 10)
    image = image.draw_line(ink, x - arm, y, x + arm, y)
    image = image.draw_line(ink, x, y - arm, x, y + arm)
    return image.draw_circle(ink, x, y, max(3, arm // 2))
