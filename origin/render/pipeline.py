"""The render pipeline: bytes in, bytes out, as a declared list of small steps.

Reading `PIPELINE` tells the whole story of a render. Each step takes the context and
replaces its image; the deadline is checked between steps, and every image is
registered with the guard so a timeout can kill whatever libvips is computing.

Sizes: `ctx.logical` is the current image's size at the source's scale. JPEG sources
are decoded at the largest 1/2, 1/4 or 1/8 scale that still covers the output
(shrink-on-load), so the decoded image may be smaller than `logical`; the geometry
plan is made at the logical scale and mapped onto the decoded pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pyvips

from ..errors import CorruptImage, InvalidParam
from ..formats import Accepts, output_format
from ..geometry import Plan, plan
from ..spec import Color, TransformSpec
from . import effects, watermark
from .budget import estimate
from .config import RenderConfig
from .encode import encode, supports_alpha
from .guard import RenderGuard
from .probe import SourceInfo, check_frames, probe

_JPEG_SHRINKS = (8, 4, 2)


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    format: str
    width: int
    height: int


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


Step = Callable[[Context], None]
Size = tuple[int, int]


def _scale(ctx: Context) -> tuple[float, float]:
    return ctx.image.width / ctx.logical[0], ctx.image.height / ctx.logical[1]


def orient(ctx: Context) -> None:
    """EXIF auto-orientation, always; the tag is removed so nothing rotates it twice."""
    if ctx.image.get_typeof("orientation") and ctx.image.get("orientation") != 1:
        ctx.image = ctx.image.autorot()


def crop_rect(ctx: Context) -> None:
    """`rect`: a source-pixel crop, clipped to the image, before anything is resized."""
    if ctx.spec.rect is None:
        return
    x, y, w, h = ctx.spec.rect
    lw, lh = ctx.logical
    if x >= lw or y >= lh:
        raise InvalidParam(f"rect lies outside the {lw}x{lh} image")
    w, h = min(w, lw - x), min(h, lh - y)
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
    else:
        background = colour.getpoint(0, 0)
    left, top, width, height = colour.find_trim(threshold=spec.trim_tol, background=background)
    return left, top, width, height


def rotate_flip(ctx: Context) -> None:
    """`rot` (90-degree steps, counter-clockwise as imgix documents) and `flip`, before
    sizing, so `w` is the output's width. libvips' `rot` turns clockwise."""
    if ctx.spec.rot:
        ctx.image = ctx.image.rot(f"d{360 - ctx.spec.rot}")
        if ctx.spec.rot in (90, 270):
            ctx.logical = (ctx.logical[1], ctx.logical[0])
    if ctx.spec.flip in ("h", "hv"):
        ctx.image = ctx.image.fliphor()
    if ctx.spec.flip in ("v", "hv"):
        ctx.image = ctx.image.flipver()


def make_plan(ctx: Context) -> None:
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
    would cost ~4 ms a render to change nothing.
    """
    image = ctx.image
    if image.get_typeof("icc-profile-data") and not _is_srgb(image):
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


def canvas(ctx: Context) -> None:
    """fill / fillmax / clamp: place the image on the plan's canvas; then `pad` around it."""
    assert ctx.plan is not None
    if ctx.plan.canvas is not None:
        ctx.image = _place(ctx.image, ctx.plan.canvas, ctx.plan.offset, ctx.spec, ctx.fmt)
    if ctx.plan.pad:
        pad = ctx.plan.pad
        size = (ctx.image.width + 2 * pad, ctx.image.height + 2 * pad)
        ctx.image = _embed(ctx.image, size, (pad, pad), ctx.spec.bg, ctx.fmt)


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


def draw_mark(ctx: Context) -> None:
    if ctx.mark is None:
        return
    mark = watermark.load_mark(ctx.mark, ctx.image.width, ctx.image.height, ctx.spec, ctx.config)
    ctx.image = watermark.composite(ctx.image, mark, ctx.spec)


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


PIPELINE: tuple[Step, ...] = (
    orient,
    crop_rect,
    trim,
    rotate_flip,
    make_plan,
    crop_region,
    resize,
    to_srgb,
    adjust,
    canvas,
    draw_mark,
    background,
)


def _run(ctx: Context, guard: RenderGuard) -> pyvips.Image:
    for step in PIPELINE:
        guard.check()
        step(ctx)
        guard.track(ctx.image)
    return ctx.image


def _logical_before_load(info: SourceInfo, spec: TransformSpec) -> tuple[int, int]:
    width, height = info.width, info.height
    if spec.rect is not None:
        x, y, w, h = spec.rect
        width, height = max(1, min(w, width - x)), max(1, min(h, height - y))
    if spec.rot in (90, 270):
        width, height = height, width
    return width, height


def jpeg_shrink(info: SourceInfo, spec: TransformSpec, config: RenderConfig) -> int:
    """The largest JPEG shrink-on-load factor whose decode still covers the output."""
    if spec.trim is not None:
        return 1
    pre = plan(*_logical_before_load(info, spec), spec, config.max_output_side)
    _, _, rw, rh = pre.region
    needed = max(pre.size[0] / rw, pre.size[1] / rh)
    for factor in _JPEG_SHRINKS:
        if needed * factor <= 1:
            return factor
    return 1


def _needs_random_access(info: SourceInfo, spec: TransformSpec) -> bool:
    """Steps that read the image twice or out of order (rotation, trim, smart crop, blurred fill)."""
    smart = any(word in spec.crop for word in ("entropy", "edges"))
    return bool(
        info.orientation != 1 or spec.rot or spec.flip or spec.trim or smart or spec.fill == "blur"
    )


def _only_recompresses(spec: TransformSpec, fmt: str, info: SourceInfo, config: RenderConfig) -> bool:
    """True when the source itself is a valid answer: same format, upright, within the
    output cap, no metadata to strip, and no animation the render would have reduced to one frame."""
    bare = replace(spec, q=None, auto=(), lossless=False, fm=None, dl=None)
    return (
        bare == TransformSpec()
        and fmt == info.format
        and info.orientation == 1
        and not info.has_metadata
        and max(info.width, info.height) <= config.max_output_side
        and (config.animation or not info.animated)
    )


def render(
    data: bytes,
    spec: TransformSpec,
    accepts: Accepts,
    config: RenderConfig,
    mark: bytes | None,
    guard: RenderGuard,
) -> Rendered:
    """Render `data` per `spec`. Raises the typed 4xx/503 errors, never pyvips.Error.

    The output format is chosen here, from the source's header, so the event loop never
    parses image headers.
    """
    info = probe(data, config)
    fmt = output_format(spec.fm, "format" in spec.auto, info.format, accepts, info.has_alpha)
    animate = config.animation and fmt in ("gif", "webp") and info.animated
    if animate:
        check_frames(info, config)
    shrink = 1 if animate or info.format != "jpg" else jpeg_shrink(info, spec, config)
    cost = estimate(info, len(data), shrink) * (info.pages if animate else 1)
    try:
        with guard.reserve(cost):
            if animate:
                image = _render_animation(data, info, spec, fmt, config, guard, mark)
            else:
                image = _render_still(data, info, spec, fmt, config, guard, mark, shrink)
            guard.check()
            body = encode(guard.track(image), fmt, spec, config)
    except pyvips.Error:
        guard.check()
        raise CorruptImage("the image data is corrupt or truncated") from None
    if _only_recompresses(spec, fmt, info, config) and len(body) >= len(data):
        return Rendered(data, info.format, info.width, info.height)
    height = image.get("page-height") if animate else image.height
    return Rendered(body, fmt, image.width, height)


def _render_still(data, info, spec, fmt, config, guard, mark, shrink) -> pyvips.Image:  # type: ignore[no-untyped-def]
    options: dict[str, object] = {"fail_on": "truncated"}
    if not _needs_random_access(info, spec):
        options["access"] = "sequential"
    if shrink > 1:
        options["shrink"] = shrink
    image = guard.track(pyvips.Image.new_from_buffer(data, "", **options))
    ctx = Context(image=image, logical=(info.width, info.height), spec=spec, fmt=fmt, config=config, mark=mark)
    return _run(ctx, guard)


def _render_animation(data, info, spec, fmt, config, guard, mark) -> pyvips.Image:  # type: ignore[no-untyped-def]
    """Every frame through the same pipeline, with one size for all: smart crops are
    centred and the first frame's trim box is applied to every frame."""
    source = guard.track(pyvips.Image.new_from_buffer(data, "", n=-1, fail_on="truncated"))
    frame_height = source.get("page-height") if source.get_typeof("page-height") else source.height
    frames = []
    trim_box = None
    for index in range(source.height // frame_height):
        frame = source.crop(0, index * frame_height, source.width, frame_height)
        ctx = Context(
            image=frame,
            logical=(frame.width, frame.height),
            spec=spec,
            fmt=fmt,
            config=config,
            mark=mark,
            smart_allowed=False,
            trim_box=trim_box,
        )
        frames.append(_run(ctx, guard))
        trim_box = ctx.trim_box
    joined = pyvips.Image.arrayjoin(frames, across=1).copy()
    joined.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    for field in ("delay", "loop", "gif-delay"):
        if source.get_typeof(field):
            joined.set_type(source.get_typeof(field), field, source.get(field))
    return joined
