"""`txt` and the `txt-*` family: text drawn onto the image with libvips' Pango text.

The fonts are the project's own (DejaVu, subset to Latin and renamed Origin Sans / Serif /
Mono, in `fonts/` with their licence), loaded with `fontfile=`, so a URL renders the same
bytes on every machine whatever fonts the system has. imgix's font names map onto them by
kind (`FONT_NAMES`): monospaced names to Origin Mono, serif names to Origin Serif, the
rest to Origin Sans; "Bold/Black/Heavy/Demi" picks the bold face and "Italic/Oblique"
the slanted one.

Text comes from the URL, so every cost is bounded before Pango runs: the length and line
count by settings (`TextLimits`), the font size by `max_size`, and what is laid out by
the box the text may occupy (text that cannot fit is cut before layout, so a long
string at a large size never becomes a huge mask). Sizes are output pixels (`dpi=72`,
so a point is a pixel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pyvips

from ..errors import ParamOutOfRange
from ..geometry import aligned
from ..spec import Color
from ..urlparams.text import TextLimits, drawable

FONTS = Path(__file__).parent / "fonts"
ELLIPSIS = "\u2026"
_MONO = ("mono", "courier", "menlo", "monaco", "typewriter")
_SERIF = (
    "serif", "times", "georgia", "baskerville", "didot", "palatino", "cochin", "charter", "hoefler",
    "iowan", "athelas", "caslon", "superclarendon", "marion", "papyrus", "herculanum",
)  # fmt: skip
_SCRIPT = ("cursive", "snell", "zapfino", "savoye", "brush", "chalk", "marker", "noteworthy", "comic")
"""Handwriting and script faces: the closest shipped face is the serif italic."""
_BOLD = ("bold", "black", "heavy", "demi", "ultrabold", "extrablack")
_SLANT = ("italic", "oblique")
_NARROWEST_EM = 0.25
"""Narrower than any glyph of the shipped faces (DejaVu's `i` and `.` are ~0.28 em)."""
_LINE_EM = 1.17
"""DejaVu's line height in ems."""


@dataclass(frozen=True, slots=True)
class TextOptions:
    """The `txt` family, imgix's defaults. `clip` lists where to cut text too wide for its box."""

    text: str
    font: str = "sans-serif"
    size: int = 12
    color: Color = (0, 0, 0, 255)
    align: tuple[str, ...] = ("bottom", "right")
    pad: int = 10
    width: int | None = None
    fit: str | None = None
    clip: tuple[str, ...] = ("end",)
    lig: int = 1
    line: int = 0
    line_color: Color = (255, 255, 255, 255)
    shad: float = 0.0
    lead: int = 0
    track: int = 0


@dataclass(frozen=True, slots=True)
class Face:
    family: str
    style: str
    file: str

    @property
    def path(self) -> str:
        return str(FONTS / self.file)


def font_face(name: str) -> Face:
    """The shipped face for one of imgix's font names (any name: classified by its words)."""
    lower = name.lower()
    bold = any(word in lower for word in _BOLD)
    script = any(word in lower for word in _SCRIPT)
    slant = script or any(word in lower for word in _SLANT)
    if any(word in lower for word in _MONO) or lower.startswith(("andale", "pt mono", "ptmono")):
        family, slanted = "Mono", "Oblique"
    elif script or (any(word in lower for word in _SERIF) and "sans" not in lower):
        family, slanted = "Serif", "Italic"
    else:
        family, slanted = "Sans", "Oblique"
    words = [w for w, on in (("Bold", bold), (slanted, slant)) if on]
    return Face(f"Origin {family}", " ".join(words), f"Origin{family}-{''.join(words) or 'Regular'}.ttf")


def check_text(name: str, text: str, limits: TextLimits) -> str:
    """The text, refused (400 naming the limit or the character) when the renderer would not draw
    it faithfully or cheaply: too long, too many lines, or characters the shipped fonts lack."""
    if len(text) > limits.max_chars:
        raise ParamOutOfRange(f"{name} may be at most {limits.max_chars} characters")
    if text.count("\n") + 1 > limits.max_lines:
        raise ParamOutOfRange(f"{name} may have at most {limits.max_lines} lines")
    return drawable(name, text)


def _markup(text: str, opts: TextOptions) -> str:
    attributes = []
    if opts.track:
        attributes.append(f'letter_spacing="{opts.track * 1024}"')
    if opts.lig == 0:
        attributes.append('font_features="liga=0,clig=0"')
    elif opts.lig == 2:
        attributes.append('font_features="liga=1,clig=1,dlig=1,hlig=1"')
    body = escape(text)
    return f"<span {' '.join(attributes)}>{body}</span>" if attributes else body


def _layout(text: str, opts: TextOptions, size: int, wrap_width: int | None) -> pyvips.Image:
    """A one-band mask (0-255) of the text's ink, or a 1x1 empty mask for blank text."""
    if not text.strip():
        return pyvips.Image.black(1, 1)
    face = font_face(opts.font)
    horizontal = next((a for a in opts.align if a in ("left", "center", "right")), "right")
    options: dict[str, object] = {
        "font": " ".join(filter(None, (face.family, face.style, str(size)))),
        "fontfile": face.path,
        "dpi": 72,
        "align": {"left": "low", "center": "centre", "right": "high"}[horizontal],
    }
    if opts.lead:
        options["spacing"] = opts.lead
    if wrap_width is not None:
        options["width"] = max(1, wrap_width)
        options["wrap"] = "word-char"
    return pyvips.Image.text(_markup(text, opts), **options)


def _clipped(text: str, keep: int, clip: tuple[str, ...]) -> str:
    """`text` reduced to `keep` characters, cut at its start, middle or end, with an ellipsis if asked."""
    mark = ELLIPSIS if "ellipsis" in clip else ""
    if keep >= len(text):
        return text
    if "start" in clip:
        return mark + text[len(text) - keep :]
    if "middle" in clip:
        head = (keep + 1) // 2
        return text[:head] + mark + text[len(text) - (keep - head) :]
    return text[:keep] + mark


def _fit_line(line: str, opts: TextOptions, size: int, box_w: int) -> pyvips.Image:
    """One unwrapped line in at most `box_w` pixels: cut per `txt-clip` (a binary search over
    how many characters are kept), never wider than the box."""
    most = min(len(line), int(box_w / (size * _NARROWEST_EM)) + 1)
    line = _clipped(line, most, opts.clip)
    mask = _layout(line, opts, size, None)
    if mask.width <= box_w:
        return mask
    low, high = 0, most - 1
    best = pyvips.Image.black(1, 1)
    while low <= high:
        keep = (low + high) // 2
        candidate = _layout(_clipped(line, keep, opts.clip), opts, size, None)
        if candidate.width <= box_w:
            best, low = candidate, keep + 1
        else:
            high = keep - 1
    return best


def _stack(masks: list[pyvips.Image], opts: TextOptions, size: int) -> pyvips.Image:
    """Unwrapped lines one under the other, each aligned like Pango aligns wrapped lines."""
    if len(masks) == 1:
        return masks[0]
    width = max(m.width for m in masks)
    step = round(size * _LINE_EM) + opts.lead
    height = step * (len(masks) - 1) + masks[-1].height
    out = pyvips.Image.black(width, height)
    for i, mask in enumerate(masks):
        x, _ = place(width, 0, mask.width, 0, opts.align, 0)
        out = out.insert(mask, x, i * step)
    return out


def text_mask(opts: TextOptions, box_w: int, box_h: int, limits: TextLimits) -> pyvips.Image:
    """The text's ink as a mask no larger than `box_w` x `box_h`.

    With `txt-width` the text wraps at that width; without it each line stays one line and
    is cut per `txt-clip`. `txt-fit=max` instead shrinks the font until everything fits.
    """
    size = min(opts.size, limits.max_size)
    wrap = min(opts.width, box_w) if opts.width else None
    if opts.fit == "max":
        return _shrunk(opts, size, wrap, box_w, box_h)
    if wrap is not None:
        lines_fit = int(box_h / (size * _LINE_EM)) + 2
        most = lines_fit * (int(wrap / (size * _NARROWEST_EM)) + 1)
        mask = _layout(opts.text[:most], opts, size, wrap)
    else:
        lines_fit = int(box_h / (size * _LINE_EM)) + 1
        mask = _stack([_fit_line(line, opts, size, box_w) for line in opts.text.split("\n")[:lines_fit]], opts, size)
    return mask.crop(0, 0, min(mask.width, box_w), min(mask.height, box_h))


def _shrunk(opts: TextOptions, size: int, wrap: int | None, box_w: int, box_h: int) -> pyvips.Image:
    """`txt-fit=max`: the largest size up to `size` at which the whole text fits the box."""
    longest = max(len(line) for line in opts.text.split("\n")) or 1
    lines = opts.text.count("\n") + 1
    if wrap is None:
        estimate = min(box_w / (longest * 0.45), box_h / (lines * _LINE_EM))
    else:
        estimate = math.sqrt(wrap * box_h / (len(opts.text) * 0.45 * _LINE_EM))
    size = max(1, min(size, int(estimate * 1.5)))
    for _ in range(8):
        mask = _layout(opts.text, opts, size, wrap)
        if (mask.width <= box_w and mask.height <= box_h) or size == 1:
            break
        size = max(1, min(size - 1, int(size * min(box_w / mask.width, box_h / mask.height))))
    return mask.crop(0, 0, min(mask.width, box_w), min(mask.height, box_h))


def _layer(mask: pyvips.Image, color: Color) -> pyvips.Image:
    """An sRGB + alpha layer of one colour with `mask` (scaled by the colour's alpha) as alpha."""
    r, g, b, a = color
    alpha = mask if a == 255 else (mask * (a / 255)).cast("uchar")
    return mask.new_from_image([r, g, b]).copy(interpretation="srgb").bandjoin(alpha).cast("uchar")


def place(image_w: int, image_h: int, w: int, h: int, align: tuple[str, ...], pad: int) -> tuple[int, int]:
    """Top-left of a w x h block aligned inside the image, `pad` from its edges (bottom,right by default)."""
    return aligned((image_w, image_h), (w, h), align, pad, ("right", "bottom"))


def draw(image: pyvips.Image, opts: TextOptions, limits: TextLimits) -> pyvips.Image:
    """The image with the text composited on it (8-bit sRGB in; same bands out)."""
    pad = min(opts.pad, max(0, (min(image.width, image.height) - 1) // 2))
    box_w, box_h = image.width - 2 * pad, image.height - 2 * pad
    mask = text_mask(opts, box_w, box_h, limits)
    if mask.width <= 1 and mask.height <= 1 and mask.max() == 0:
        return image
    x, y = place(image.width, image.height, mask.width, mask.height, opts.align, pad)
    margin = opts.line + (math.ceil(opts.shad * 2) + 2 if opts.shad else 0)
    canvas = mask.embed(margin, margin, mask.width + 2 * margin, mask.height + 2 * margin)
    layers = []
    if opts.shad:
        offset = math.ceil(opts.shad / 2)
        shadow = canvas.gaussblur(0.5 + opts.shad * 0.6).embed(offset, offset, canvas.width, canvas.height)
        layers.append(_layer((shadow * 0.7).cast("uchar"), (0, 0, 0, 255)))
    if opts.line:
        window = 2 * opts.line + 1
        layers.append(_layer(canvas.rank(window, window, window * window - 1), opts.line_color))
    layers.append(_layer(canvas, opts.color))
    had_alpha = image.hasalpha()
    base = image if had_alpha else image.bandjoin(255)
    for layer in layers:
        base = base.composite2(layer, "over", x=x - margin, y=y - margin)
    base = base.cast("uchar")
    return base if had_alpha else base.extract_band(0, n=3)
