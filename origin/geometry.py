"""imgix's width/height arithmetic as a pure function: source size + spec -> a Plan.

Keeping the fit modes here, away from pyvips, makes the table of "source x request ->
output size" testable without decoding anything, and lets the renderer pick the
shrink-on-load factor before it decodes a single pixel.

Every plan is "take this region of the source, resize it to `size`, then optionally
place it on a `canvas`". Cropping first and resizing second bounds the work by the
output size, whatever the aspect ratios involved.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

from .spec import TransformSpec

Box = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Plan:
    """What the renderer does with a (rect-cropped, trimmed, rotated) source of a known size."""

    region: Box
    """x, y, width, height of the source to keep (the whole source when nothing is cropped)."""
    size: tuple[int, int]
    """Width and height the region is resized to."""
    canvas: tuple[int, int] | None = None
    """Width and height of the fill / fillmax / clamp canvas the resized image is placed on."""
    offset: tuple[int, int] = (0, 0)
    """Where the resized image sits on the canvas."""
    smart: str | None = None
    """libvips `interesting` mode when libvips, not the plan, places the region."""
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    """Top, right, bottom, left padding in `bg` around everything else, kept apart so clamp's
    edge pixels stop at it."""

    @property
    def output_size(self) -> tuple[int, int]:
        width, height = self.canvas or self.size
        top, right, bottom, left = self.pad
        return width + left + right, height + top + bottom


def _px(value: float | None, source: int, dpr: float) -> float | None:
    if value is None:
        return None
    return (value * source if value < 1 else value) * dpr


def plan(src_w: int, src_h: int, spec: TransformSpec, max_side: int) -> Plan:
    """The region, resize and canvas for `spec` on a `src_w` x `src_h` source.

    `pad` (and `pad-top`... which override it per side) lies inside the requested size, so
    the content gets the box minus the padding, and the content's own cap shrinks by the
    padding so the output stays within `max_side` (a pad too wide for the cap is narrowed
    to leave one pixel of content). A `border` frames the padded image the same way (its
    widths join the padding: the frame is drawn over them later), so without `w`/`h` it
    adds to the size and with them the framed image fits the box, as imgix documents for
    `pad`. With fit=crop, `min-w`... `max-h` bound the box.
    """
    w = _px(spec.w, src_w, spec.dpr)
    h = _px(spec.h, src_h, spec.dpr)
    if spec.fit in ("crop", "fill") and spec.ar is not None:
        w, h = _apply_ratio(w, h, spec.ar, src_w, src_h)
    if spec.fit == "crop":
        w, h = _bound(w, spec.min_w, spec.max_w), _bound(h, spec.min_h, spec.max_h)
    w, h = _cap(w, h, max_side)
    top, right, bottom, left = pad = _padding(spec, max_side)
    if w is not None:
        w = max(1.0, w - left - right)
    if h is not None:
        h = max(1.0, h - top - bottom)
    result = _fit(src_w, src_h, w, h, spec, max(1, max_side - max(left + right, top + bottom)))
    return replace(result, pad=pad) if any(pad) else result


def border_sides(spec: TransformSpec) -> tuple[int, int, int, int]:
    """The frame's width per side (top, right, bottom, left): `border-<side>` if given, else
    `border`'s width; none without a border."""
    if spec.border is None:
        return 0, 0, 0, 0
    given = (spec.border_top, spec.border_right, spec.border_bottom, spec.border_left)
    top, right, bottom, left = (spec.border[0] if side is None else side for side in given)
    return top, right, bottom, left


def _padding(spec: TransformSpec, max_side: int) -> tuple[int, int, int, int]:
    """Per side: `pad-<side>` if given, else `pad`, plus the border's width; each axis narrowed
    to leave one pixel."""
    pads = [
        spec.pad if side is None else side for side in (spec.pad_top, spec.pad_right, spec.pad_bottom, spec.pad_left)
    ]
    top, right, bottom, left = (p + b for p, b in zip(pads, border_sides(spec), strict=True))
    room = max_side - 1
    if top + bottom > room:
        k = room / (top + bottom)
        top, bottom = int(top * k), int(bottom * k)
    if left + right > room:
        k = room / (left + right)
        left, right = int(left * k), int(right * k)
    return top, right, bottom, left


def _bound(value: float | None, low: int | None, high: int | None) -> float | None:
    if value is None:
        return None
    if high is not None:
        value = min(value, float(high))
    if low is not None:
        value = max(value, float(low))
    return value


def _apply_ratio(w: float | None, h: float | None, ar: float, src_w: int, src_h: int) -> tuple[float, float]:
    """`ar` completes a single size (fit=crop crops to it, fit=fill pads to it); with no size
    the frame is the largest box of that ratio inside the source."""
    if w is not None and h is not None:
        return w, h
    if w is not None:
        return w, w / ar
    if h is not None:
        return h * ar, h
    if src_w / src_h > ar:
        return src_h * ar, float(src_h)
    return float(src_w), src_w / ar


def _cap(w: float | None, h: float | None, max_side: int) -> tuple[float | None, float | None]:
    largest = max((v for v in (w, h) if v is not None), default=0.0)
    if largest <= max_side:
        return w, h
    k = max_side / largest
    return (None if w is None else w * k), (None if h is None else h * k)


def _fit(src_w: int, src_h: int, w: float | None, h: float | None, spec: TransformSpec, max_side: int) -> Plan:
    whole: Box = (0, 0, src_w, src_h)
    fit = spec.fit
    no_enlarge = fit in ("max", "min", "fillmax")
    if w is None and h is None:
        # Nothing asked: the source as it is, unless it is larger than the output cap.
        return Plan(region=whole, size=_contain(src_w, src_h, None, None, True, max_side))
    if fit == "fillmax" and (w is None or h is None):
        # imgix: fillmax never enlarges the image, but the canvas is still the full box,
        # its missing side following the source's ratio (300x200, w=600 -> 600x400).
        width = w if w is not None else (h or 0.0) * src_w / src_h
        height = h if h is not None else width * src_h / src_w
        k = min(1.0, max_side / max(width, height))
        w, h = width * k, height * k
    elif w is None or h is None or fit in ("clip", "max"):
        return Plan(region=whole, size=_contain(src_w, src_h, w, h, no_enlarge, max_side))
    assert w is not None and h is not None  # both branches above leave both sides set
    tw, th = _round(w), _round(h)
    if fit == "scale":
        return Plan(region=whole, size=(tw, th))
    if fit in ("crop", "min"):
        if fit == "min":
            k = min(1.0, src_w / tw, src_h / th)
            tw, th = _round(tw * k), _round(th * k)
        return _cover(src_w, src_h, tw, th, spec)
    # fill, fillmax, clamp: the whole image, contained, on a w x h canvas.
    size = _contain(src_w, src_h, w, h, fit == "fillmax", max_side)
    if fit == "fillmax" and spec.fill_max:
        # fill-max=source: each side of the canvas at most the (rect-cut) source's; the image is unchanged.
        tw, th = min(tw, max(src_w, size[0])), min(th, max(src_h, size[1]))
    offset = ((tw - size[0]) // 2, (th - size[1]) // 2)
    return Plan(region=whole, size=size, canvas=(tw, th), offset=offset)


def _contain(
    src_w: int, src_h: int, w: float | None, h: float | None, no_enlarge: bool, max_side: int
) -> tuple[int, int]:
    """Scale to fit inside w x h (either may be absent), keeping the aspect ratio."""
    scale = min((v / s for v, s in ((w, src_w), (h, src_h)) if v is not None), default=1.0)
    if no_enlarge:
        scale = min(scale, 1.0)
    scale = min(scale, max_side / src_w, max_side / src_h)
    width, height = src_w * scale, src_h * scale
    # The constraining side matches the request exactly; the other follows the ratio.
    return _round(width), _round(height)


def _cover(src_w: int, src_h: int, tw: int, th: int, spec: TransformSpec) -> Plan:
    """Fill tw x th exactly: choose the source region with that aspect ratio, then resize it."""
    scale = max(tw / src_w, th / src_h)
    focal = "focalpoint" in spec.crop
    if focal:
        scale *= spec.fp_z
    rw = min(src_w, _round(tw / scale))
    rh = min(src_h, _round(th / scale))
    if focal:
        x = _clamp(round(spec.fp_x * src_w - rw / 2), 0, src_w - rw)
        y = _clamp(round(spec.fp_y * src_h - rh / 2), 0, src_h - rh)
        return Plan(region=(x, y, rw, rh), size=(tw, th))
    smart = "entropy" if "entropy" in spec.crop else "attention" if "edges" in spec.crop else None
    x, y = aligned((src_w, src_h), (rw, rh), spec.crop)
    return Plan(region=(x, y, rw, rh), size=(tw, th), smart=smart)


HORIZONTAL = ("left", "center", "right")
VERTICAL = ("top", "middle", "bottom")


def aligned(
    base: tuple[int, int],
    size: tuple[int, int],
    words: Collection[str],
    pad: int = 0,
    default: tuple[str, str] = ("center", "middle"),
) -> tuple[int, int]:
    """Top-left of a `size` block on a `base` one, per axis where `words` place it: `pad` in
    from the side they name (left/right, top/bottom), or centred (center, middle). `default`
    names the place on an axis where they name none; the parsers allow one word an axis.
    Used by crops (`crop`, `blend-crop`) and overlays (`mark-align`, `txt-align`, `blend-align`)."""
    return (
        _along(base[0], size[0], pad, next((w for w in HORIZONTAL if w in words), default[0]), HORIZONTAL),
        _along(base[1], size[1], pad, next((w for w in VERTICAL if w in words), default[1]), VERTICAL),
    )


def _along(base: int, size: int, pad: int, where: str, sides: tuple[str, str, str]) -> int:
    if where == sides[0]:
        return pad
    if where == sides[2]:
        return base - size - pad
    return (base - size) // 2


def _round(value: float) -> int:
    """Whole pixels, halves up (as params rounds sizes), never below one pixel."""
    return max(1, int(value + 0.5))


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
