"""`blend`: a colour, or another image of our storage (a key, never a URL), blended onto the image.

A colour covers the whole image; an image is sized by `blend-w`/`blend-h` (pixels, or a
share of the base in (0, 1)) and `blend-fit`, or to the base's size by
`blend-size=inherit`, then placed by `blend-align` (default top,left) `blend-pad` pixels
in, or at `blend-x`/`blend-y`; a layer larger than the base (imgix allows `blend-w`/`blend-h`
beyond it) is clipped by the base's edges. `blend-alpha` scales its opacity (with a colour's own
alpha). imgix's modes map onto libvips' `composite` modes (`MODES`); the four
non-separable ones libvips lacks (color, hue, saturation, luminosity) are done here in
LCh: the result takes the named components from the blend and the rest from the base,
and is laid over the base with the blend's opacity.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from ..geometry import aligned
from ..spec import Color
from . import faces
from .config import RenderConfig
from .layer import decode, fitted
from .layer import px as layer_px
from .probe import probe

MODES = {
    "normal": "over",
    "multiply": "multiply",
    "screen": "screen",
    "overlay": "overlay",
    "darken": "darken",
    "lighten": "lighten",
    "dodge": "colour-dodge",
    "burn": "colour-burn",
    "hardlight": "hard-light",
    "softlight": "soft-light",
    "difference": "difference",
    "exclusion": "exclusion",
}
LCH_MODES = {"color": (False, True, True), "hue": (False, False, True), "saturation": (False, True, False)}
LCH_MODES["luminosity"] = (True, False, False)
"""Which of (L, C, h) the non-separable modes take from the blend layer."""


@dataclass(frozen=True, slots=True)
class BlendOptions:
    color: Color | None = None
    mode: str = "overlay"
    alpha: int = 100
    align: tuple[str, ...] = ("left", "top")
    pad: int = 0
    x: int | None = None
    y: int | None = None
    w: float | None = None
    h: float | None = None
    fit: str = "clip"
    crop: tuple[str, ...] = ()
    inherit: bool = False


@dataclass(frozen=True, slots=True)
class Layer:
    """The part of the blend image that lands on the base (imgix draws it at its box's size and
    the base's edges clip it): those pixels, and their top-left on the base."""

    image: pyvips.Image
    x: int
    y: int


_IN_MEMORY_PIXELS = 16_000_000
"""A blend layer larger than this is never held whole: faces are looked for on a smaller decode."""


def load_blend(data: bytes, base_w: int, base_h: int, opts: BlendOptions, config: RenderConfig) -> Layer:
    """Decode the blend image at the size it is drawn (sRGB + alpha), per blend-w/h/fit/crop/size,
    placed per blend-align/pad/x/y, and cut to the part of it the base shows.

    The drawn layer may be far larger than the base (imgix allows blend-w/h beyond the base's
    size): it stays a lazy libvips pipeline and only the shown part is computed and kept."""
    info = probe(data, config)
    bw = base_w if opts.inherit else layer_px(opts.w, base_w)
    bh = base_h if opts.inherit else layer_px(opts.h, base_h)
    width, height = fitted((info.width, info.height), (bw, bh), opts.fit)
    layer = decode(data, width, height)
    if bw is not None and bh is not None and opts.fit in ("crop", "clamp"):
        found: list[faces.Face] = []
        if opts.fit == "crop" and "faces" in opts.crop:
            layer, found = _faces(data, layer)
        layer = _to_box(layer, (bw, bh), opts, found)
    x, y = place(base_w, base_h, layer.width, layer.height, opts)
    left, top = max(0, x), max(0, y)
    right, bottom = min(base_w, x + layer.width), min(base_h, y + layer.height)
    if right <= left or bottom <= top:
        # Placed wholly off the base: nothing of it is drawn (one transparent pixel stands for it).
        return Layer(pyvips.Image.black(1, 1, bands=4).cast("uchar").copy(interpretation="srgb"), 0, 0)
    shown = layer.crop(left - x, top - y, right - left, bottom - top)
    return Layer(shown.cast("uchar").copy_memory(), left, top)


def _faces(data: bytes, layer: pyvips.Image) -> tuple[pyvips.Image, list[faces.Face]]:
    """The (lazy) blend layer, and the faces in it in its coordinates. The detector reads its
    image, which the crop then reads again: a sequential decode cannot be read twice, so the
    layer is copied to memory when small enough, else the faces are found on a smaller decode
    of the same image (in memory) and scaled up to the layer."""
    if layer.width * layer.height <= _IN_MEMORY_PIXELS:
        layer = layer.copy_memory()
        return layer, faces.detect(layer)
    k = (_IN_MEMORY_PIXELS / (layer.width * layer.height)) ** 0.5
    small = decode(data, max(1, round(layer.width * k)), max(1, round(layer.height * k))).copy_memory()
    return layer, [face.scaled(layer.width / small.width, layer.height / small.height) for face in faces.detect(small)]


def _to_box(layer: pyvips.Image, box: tuple[int, int], opts: BlendOptions, found: list[faces.Face]) -> pyvips.Image:
    """crop: cut to the box (centred on the `found` faces for `blend-crop=faces`, else at
    `blend-crop`'s sides, else the centre); clamp: extend the edges."""
    bw, bh = box
    if opts.fit == "clamp":
        return layer.embed((bw - layer.width) // 2, (bh - layer.height) // 2, bw, bh, extend="copy")
    if found:
        return layer.crop(*faces.centre_on((0, 0, bw, bh), faces.union(found), layer.width, layer.height))
    x, y = aligned((layer.width, layer.height), (bw, bh), opts.crop)
    return layer.crop(x, y, bw, bh)


def place(base_w: int, base_h: int, w: int, h: int, opts: BlendOptions) -> tuple[int, int]:
    """Top-left of the blend image: at `blend-align` (default top,left) `blend-pad` in, each
    axis overridden by `blend-x`/`blend-y`."""
    x, y = aligned((base_w, base_h), (w, h), opts.align, opts.pad, ("left", "top"))
    return (x if opts.x is None else opts.x), (y if opts.y is None else opts.y)


def _full_layer(image: pyvips.Image, layer: Layer | None, opts: BlendOptions) -> pyvips.Image:
    """The blend as an sRGB + alpha layer of the image's size, its opacity scaled by blend-alpha."""
    if layer is None:
        r, g, b, a = opts.color or (0, 0, 0, 255)
        full = image.new_from_image([r, g, b, a]).copy(interpretation="srgb")
    else:
        full = layer.image.embed(layer.x, layer.y, image.width, image.height, extend="background", background=[0] * 4)
    if opts.alpha < 100:
        full = (full * [1, 1, 1, opts.alpha / 100]).cast("uchar")
    return full.copy(interpretation="srgb")


def blend(image: pyvips.Image, layer: Layer | None, opts: BlendOptions) -> pyvips.Image:
    """The image (8-bit sRGB, with or without alpha) with the colour (`layer` None) or image blended
    on (`layer` from `load_blend` for this image's size and these options)."""
    had_alpha = image.hasalpha()
    base = image if had_alpha else image.bandjoin(255)
    full = _full_layer(image, layer, opts)
    if opts.mode in LCH_MODES:
        out = _lch(base, full, LCH_MODES[opts.mode])
    else:
        out = base.composite2(full, MODES[opts.mode])
    out = out.cast("uchar")
    return out if had_alpha else out.extract_band(0, n=3)


def _lch(base: pyvips.Image, full: pyvips.Image, take: tuple[bool, bool, bool]) -> pyvips.Image:
    """Non-separable modes: (L, C, h) from the blend where `take` says, else from the base,
    then that colour laid over the base with the blend's alpha."""
    ours = base.extract_band(0, n=3).colourspace("lch")
    theirs = full.extract_band(0, n=3).colourspace("lch")
    bands = [(theirs if t else ours)[i] for i, t in enumerate(take)]
    mixed = bands[0].bandjoin(bands[1:]).copy(interpretation="lch").colourspace("srgb")
    return base.composite2(mixed.bandjoin(full[3]).cast("uchar").copy(interpretation="srgb"), "over")
