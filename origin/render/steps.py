"""The render steps: each takes the context and replaces its image (pyvips; no I/O).

Sizes: `ctx.logical` is the current image's size at the source's scale. JPEG sources
are decoded at the largest 1/2, 1/4 or 1/8 scale that still covers the output
(shrink-on-load), so the decoded image may be smaller than `logical`; the geometry
plan is made at the logical scale and mapped onto the decoded pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import pyvips

from ..errors import InvalidParam
from ..geometry import Plan, plan
from ..spec import Color, Rect, RectPart, TransformSpec
from . import colour, debug, effects, frame, gradient, grid, masks, tone
from .config import RenderConfig
from .encode import supports_alpha
from .faces import Face


@dataclass
class Context:
    image: pyvips.Image
    logical: tuple[int, int]
    spec: TransformSpec
    fmt: str
    config: RenderConfig
    mark: bytes | None = None
    plan: Plan | None = None
    smart_allowed: bool = True
    trim_box: tuple[int, int, int, int] | None = None
    """Set by the first `trim`; an animation passes it on so every frame keeps one size."""
    blend: bytes | None = None
    faces: list[Face] | None = None
    """Faces found for fit=facearea / crop=faces, at the logical scale."""
    images: Mapping[str, bytes] = field(default_factory=dict)
    """Other stored images the spec names, by parameter (`mask`; the mark is `mark`)."""
    planned_on: tuple[int, int] = (0, 0)
    """The logical size the plan was made on (where fp-x/fp-y are measured)."""


Step = Callable[[Context], None]
Size = tuple[int, int]


def _scale(ctx: Context) -> tuple[float, float]:
    return ctx.image.width / ctx.logical[0], ctx.image.height / ctx.logical[1]


_ORIENT_AS_EXIF = {0: 1, 90: 8, 180: 3, 270: 6}
"""`orient=90/180/270` turn counter-clockwise, as `rot` does: the EXIF values that do that."""


def orient(ctx: Context) -> None:
    """EXIF auto-orientation, always; the tag is removed so nothing rotates it twice.
    `orient` overrides the file's own orientation: 1-8 as the EXIF values, 0 as upright."""
    wanted = ctx.spec.orient
    if wanted is not None:
        before = (ctx.image.width, ctx.image.height)
        image = ctx.image.copy()
        image.set_type(pyvips.GValue.gint_type, "orientation", _ORIENT_AS_EXIF.get(wanted, wanted))
        ctx.image = image.autorot()
        if (ctx.image.width, ctx.image.height) != before:
            ctx.logical = (ctx.logical[1], ctx.logical[0])
    elif ctx.image.get_typeof("orientation") and ctx.image.get("orientation") != 1:
        ctx.image = ctx.image.autorot()


def rect_box(rect: Rect, size: Size) -> tuple[int, int, int, int]:
    """`rect` in source pixels on a `size` source: shares are of the source's width or
    height, keywords place the region (after its size is known) at an edge or the middle."""
    width, height = size

    def length(value: RectPart, whole: int) -> int:
        return max(1, round(value * whole)) if isinstance(value, float) else int(value)

    def place(value: RectPart, whole: int, span: int) -> int:
        if isinstance(value, str):
            return {"left": 0, "top": 0, "right": whole - span, "bottom": whole - span}.get(value, (whole - span) // 2)
        return round(value * whole) if isinstance(value, float) else value

    w, h = length(rect[2], width), length(rect[3], height)
    x, y = place(rect[0], width, min(w, width)), place(rect[1], height, min(h, height))
    return x, y, w, h


def crop_rect(ctx: Context) -> None:
    """`rect`: a source region, clipped to the image, before anything is resized."""
    if ctx.spec.rect is None:
        return
    lw, lh = ctx.logical
    x, y, w, h = rect_box(ctx.spec.rect, ctx.logical)
    if x >= lw or y >= lh:
        raise InvalidParam(f"rect lies outside the {lw}x{lh} image")
    crop_to(ctx, (x, y, min(w, lw - x), min(h, lh - y)))


def crop_to(ctx: Context, box: tuple[int, int, int, int]) -> None:
    """Keep `box` (logical pixels, inside the image) of the current image."""
    x, y, w, h = box
    fx, fy = _scale(ctx)
    left, top = min(int(x * fx), ctx.image.width - 1), min(int(y * fy), ctx.image.height - 1)
    width = max(1, min(round(w * fx), ctx.image.width - left))
    height = max(1, min(round(h * fy), ctx.image.height - top))
    ctx.image = ctx.image.crop(left, top, width, height)
    ctx.logical = (w, h)


def trim(ctx: Context) -> None:
    """`trim`: remove uniform borders of the top-left pixel's colour (auto) or `trim-color`."""
    if ctx.spec.trim is None:
        return
    if ctx.trim_box is None:
        ctx.trim_box = _find_trim(ctx.image, ctx.spec)
    left, top, width, height = ctx.trim_box
    if width <= 0 or height <= 0:
        return
    fx, fy = _scale(ctx)
    if ctx.spec.trim_pad:
        px, py = round(ctx.spec.trim_pad * fx), round(ctx.spec.trim_pad * fy)
        right, bottom = min(ctx.image.width, left + width + px), min(ctx.image.height, top + height + py)
        left, top = max(0, left - px), max(0, top - py)
        width, height = right - left, bottom - top
    ctx.image = ctx.image.crop(left, top, width, height)
    ctx.logical = (max(1, round(width / fx)), max(1, round(height / fy)))


def _find_trim(image: pyvips.Image, spec: TransformSpec) -> tuple[int, int, int, int]:
    """The box inside the border; width 0 keeps the image (all border, or under the 3x3
    median window that libvips' find_trim needs)."""
    if min(image.width, image.height) < 3:
        return 0, 0, 0, 0
    colour = image.flatten(background=[255, 255, 255]) if image.hasalpha() else image
    if spec.trim == "color" and spec.trim_color is not None:
        background = list(spec.trim_color[: colour.bands])
        return colour.find_trim(threshold=spec.trim_tol, background=background)
    # trim=auto: `trim-md` is the difference from the corner colour that ends the border;
    # a side whose strip varies more than `trim-sd` (standard deviation) is not a border.
    box = colour.find_trim(threshold=spec.trim_md, background=colour.getpoint(0, 0))
    return _keep_busy_sides(colour, box, spec.trim_sd)


def _keep_busy_sides(image: pyvips.Image, box: tuple[int, int, int, int], limit: float) -> tuple[int, int, int, int]:
    left, top, width, height = box
    if width <= 0 or height <= 0:
        return box
    right, bottom = left + width, top + height
    strips = {
        "left": (0, 0, left, image.height),
        "top": (0, 0, image.width, top),
        "right": (right, 0, image.width - right, image.height),
        "bottom": (0, bottom, image.width, image.height - bottom),
    }
    for side, (x, y, w, h) in strips.items():
        if w > 0 and h > 0 and image.crop(x, y, w, h).deviate() > limit:
            if side == "left":
                left = 0
            elif side == "top":
                top = 0
            elif side == "right":
                right = image.width
            else:
                bottom = image.height
    return left, top, right - left, bottom - top


QUARTER_TURNS = (90.0, 180.0, 270.0)


def turned(size: Size, rot: float) -> Size:
    """The size of a `size` image after `rot` degrees: swapped for quarter turns, else the
    bounding box of the turned image, rounded as libvips' `rotate` rounds it."""
    width, height = size
    if rot in (90, 270):
        return height, width
    if not rot or rot == 180:
        return size
    c, s = abs(math.cos(math.radians(rot))), abs(math.sin(math.radians(rot)))
    return max(1, round(width * c + height * s)), max(1, round(width * s + height * c))


def rotate_flip(ctx: Context) -> None:
    """`rot` (counter-clockwise, as imgix documents) and `flip`, before sizing, so `w` is the
    output's width. Quarter turns are exact (libvips' `rot`, clockwise, hence 360 - rot);
    any other angle turns the image on a canvas grown to hold it, its uncovered corners
    transparent (the `background` step later fills them with `bg`, or white without alpha).
    """
    rot = ctx.spec.rot
    if rot in QUARTER_TURNS:
        ctx.image = ctx.image.rot(f"d{360 - int(rot)}")
    elif rot:
        image = ctx.image if ctx.image.hasalpha() else ctx.image.addalpha()
        band_format = image.format
        # Premultiplied, so the interpolated edge fades to transparent without a dark fringe.
        image = image.premultiply().rotate(-rot, background=[0] * image.bands).unpremultiply()
        ctx.image = image.cast(band_format)
    ctx.logical = turned(ctx.logical, rot)
    if ctx.spec.flip in ("h", "hv"):
        ctx.image = ctx.image.fliphor()
    if ctx.spec.flip in ("v", "hv"):
        ctx.image = ctx.image.flipver()


def make_plan(ctx: Context) -> None:
    ctx.planned_on = ctx.logical
    ctx.plan = plan(ctx.logical[0], ctx.logical[1], ctx.spec, ctx.config.max_output_side)
    if not ctx.smart_allowed and ctx.plan.smart:
        ctx.plan = replace(ctx.plan, smart=None)


def crop_region(ctx: Context) -> None:
    """Keep the plan's region: at the plan's place, or where libvips finds the interest."""
    assert ctx.plan is not None
    x, y, w, h = ctx.plan.region
    if (x, y, w, h) == (0, 0, *ctx.logical):
        return
    fx, fy = _scale(ctx)
    width = max(1, min(round(w * fx), ctx.image.width))
    height = max(1, min(round(h * fy), ctx.image.height))
    if ctx.plan.smart:
        ctx.image = ctx.image.smartcrop(width, height, interesting=ctx.plan.smart)
    else:
        left = min(round(x * fx), ctx.image.width - width)
        top = min(round(y * fy), ctx.image.height - height)
        ctx.image = ctx.image.crop(left, top, width, height)
    ctx.logical = (w, h)


def resize(ctx: Context) -> None:
    """Resize to the plan's exact size, premultiplied so transparent edges stay clean.

    As libvips' own thumbnail does, the premultiplied image is cast back to its band
    format before resizing: resizing floats costs twice the time and four times the
    memory of resizing 8-bit pixels, for no visible gain.
    """
    assert ctx.plan is not None
    tw, th = ctx.plan.size
    image = ctx.image
    if (image.width, image.height) != (tw, th):
        alpha = image.hasalpha()
        band_format = image.format
        if alpha:
            image = image.premultiply().cast(band_format)
        image = image.resize(tw / image.width, vscale=th / image.height)
        if alpha:
            image = image.unpremultiply().cast(band_format)
        if (image.width, image.height) != (tw, th):
            image = image.embed(0, 0, tw, th, extend="copy")
    ctx.image = image
    ctx.logical = (tw, th)


def to_srgb(ctx: Context) -> None:
    """8-bit sRGB from whatever came in (ICC-tagged, CMYK, grey, 16-bit), after resizing.

    An RGB image whose embedded profile is sRGB already is left alone: the transform
    would cost ~4 ms a render to change nothing. An 8-bit RGB(A) one with another profile
    (Adobe RGB, Display P3) takes a transform kept from an earlier render (`colour.py`);
    the rest, libvips' `icc_transform`, which builds its transform anew.
    """
    image = ctx.image
    if image.get_typeof("icc-profile-data") and not _is_srgb(image):
        converted = colour.to_srgb(image)
        if converted is not None:
            image = converted
        else:
            try:
                image = image.icc_transform("srgb", embedded=True, intent="perceptual")
            except pyvips.Error:
                pass
    if image.interpretation != "srgb":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    ctx.image = image


def _is_srgb(image: pyvips.Image) -> bool:
    return image.interpretation == "srgb" and b"sRGB" in image.get("icc-profile-data")


def adjust(ctx: Context) -> None:
    spec = ctx.spec
    if effects.has_adjustments(spec):
        ctx.image = effects.adjust(ctx.image, spec)
    if spec.blur:
        ctx.image = effects.blur(ctx.image, spec.blur)
    if spec.sharp:
        ctx.image = effects.sharpen(ctx.image, spec.sharp)


def adjust_tone(ctx: Context) -> None:
    """exp, high, shad, vib, usm, nr, px, htn, duotone (render/tone.py)."""
    if tone.has_tone(ctx.spec):
        ctx.image = tone.apply(ctx.image, ctx.spec)


def canvas(ctx: Context) -> None:
    """fill / fillmax / clamp: place the image on the plan's canvas; then `pad` around it."""
    assert ctx.plan is not None
    if ctx.plan.canvas is not None:
        ctx.image = _place(ctx.image, ctx.plan.canvas, ctx.plan.offset, ctx.spec, ctx.fmt)
    if any(ctx.plan.pad):
        top, right, bottom, left = ctx.plan.pad
        size = (ctx.image.width + left + right, ctx.image.height + top + bottom)
        ctx.image = _embed(ctx.image, size, (left, top), ctx.spec.bg, ctx.fmt)


def _place(image: pyvips.Image, size: Size, offset: Size, spec: TransformSpec, fmt: str) -> pyvips.Image:
    """The canvas of one fit mode: edge pixels (clamp), a blurred backdrop, or a colour."""
    (cw, ch), (ox, oy) = size, offset
    if spec.fit == "clamp":
        return image.embed(ox, oy, cw, ch, extend="copy")
    if spec.fill == "blur":
        backdrop = image.resize(cw / image.width, vscale=ch / image.height).gaussblur(max(2.0, cw / 40))
        backdrop = backdrop.crop(0, 0, min(cw, backdrop.width), min(ch, backdrop.height))
        backdrop = backdrop.embed(0, 0, cw, ch, extend="copy").cast("uchar")
        return backdrop.insert(image, ox, oy)
    if spec.fill == "gradient":
        backdrop = gradient.backdrop(image, size, spec)
        if image.hasalpha():
            return backdrop.composite2(image, "over", x=ox, y=oy).cast("uchar")
        return backdrop.insert(image.bandjoin(255), ox, oy)
    return _embed(image, size, offset, spec.fill_color or spec.bg, fmt)


def _embed(image: pyvips.Image, size: Size, offset: Size, colour: Color | None, fmt: str) -> pyvips.Image:
    """`image` at `offset` on a `size` canvas of `colour`: by default transparent where the
    format keeps alpha, else white."""
    if colour is None:
        colour = (255, 255, 255, 0) if supports_alpha(fmt) else (255, 255, 255, 255)
    if colour[3] < 255 and not image.hasalpha():
        image = image.bandjoin(255)
    background = list(colour if image.hasalpha() else colour[:3])
    return image.embed(*offset, *size, extend="background", background=background)


def focal_debug(ctx: Context) -> None:
    """`fp-debug`: mark where the focal point landed."""
    if ctx.spec.fp_debug and ctx.plan is not None:
        ctx.image = debug.draw(ctx.image, debug.focal_point(ctx.plan, ctx.planned_on, ctx.spec))


def border(ctx: Context) -> None:
    if ctx.spec.border is not None:
        ctx.image = frame.draw(ctx.image, ctx.spec)


def mask(ctx: Context) -> None:
    if ctx.spec.mask is not None:
        ctx.image = masks.apply(ctx.image, ctx.spec, ctx.images.get("mask"), ctx.config)


def transparency_grid(ctx: Context) -> None:
    if ctx.spec.transparency == "grid":
        ctx.image = grid.under(ctx.image, ctx.spec)


def background(ctx: Context) -> None:
    """`bg` fills transparent areas; formats without alpha get white behind them."""
    image = ctx.image
    if not image.hasalpha():
        return
    bg = ctx.spec.bg
    if bg is not None:
        layer = image.new_from_image(list(bg)).copy(interpretation="srgb")
        image = layer.composite2(image, "over").cast("uchar")
    if not supports_alpha(ctx.fmt):
        image = image.flatten(background=list(bg[:3]) if bg else [255, 255, 255]).cast("uchar")
    ctx.image = image
