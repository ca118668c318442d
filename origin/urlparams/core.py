"""The first family: size, crop, rotation, fill, colour adjustments, format, watermark, download.

These are the parameters the origin has always taken; their ranges now follow imgix's
spec (strict: refused outside; suggested: clamped into it).
"""

from __future__ import annotations

from ..errors import InvalidParam, ParamOutOfRange, UnsupportedParam
from ..formats import OUTPUT_FORMATS
from ..keys import bidi_controls
from ..spec import Rect, RectPart, TransformSpec
from .table import Family, Param
from .values import (
    alignment,
    angle,
    boolean,
    choice,
    clamped,
    clamped_decimal,
    color,
    decimal,
    integer,
    ranged_decimal,
    sides,
    storage_key,
    text,
    word_list,
)

MAX_PIXELS = 8192
"""imgix's strict ceiling for `w` and `h` in pixels (the output cap then clamps further)."""
MAX_DPR = 5.0
FITS = ("clip", "max", "min", "crop", "fill", "fillmax", "scale", "clamp", "facearea")
POSITIONS = frozenset({"top", "bottom", "left", "right"})
SMART = frozenset({"entropy", "edges", "focalpoint"})
RATIO_FITS = ("crop", "fill")
"""`ar` sets the frame for fit=crop and fit=fill; with any other fit it cannot act."""

PENDING = "is not supported yet"
REFUSED_FORMATS = {
    "mp4": "video output is out of scope: this origin serves still and animated images",
    "webm": "video output is out of scope: this origin serves still and animated images",
    "jp2": "the bundled libvips cannot write JPEG 2000",
    "jxr": "the bundled libvips cannot write JPEG XR",
}


def size(name: str, raw: str) -> float:
    """Pixels when >= 1 (rounded to whole pixels, at most 8192), a share of the source in (0, 1).

    Shares keep six decimals and stay shares: 0.9999999 is 0.999999, never 1 pixel,
    and a share that rounds to 0 is refused like 0 itself.
    """
    value = decimal(name, raw)
    if value >= 1:
        if value >= MAX_PIXELS + 0.5:
            raise ParamOutOfRange(f"{name} must be between 2 and {MAX_PIXELS} pixels, or a fraction in (0, 1)")
        return float(int(value + 0.5))
    share = min(round(value, 6), 0.999999)
    if share <= 0:
        raise InvalidParam(f"{name} must be a positive number of pixels or a fraction in (0, 1)")
    return share


def dpr(name: str, raw: str) -> float:
    value = decimal(name, raw)
    if not 0 < value <= MAX_DPR or round(value, 6) == 0:
        raise ParamOutOfRange(f"{name} must be above 0 and at most {MAX_DPR:g}")
    return round(value, 6)


def fit(name: str, raw: str) -> str:
    return choice(FITS)(name, raw)  # type: ignore[return-value]


def crop(name: str, raw: str) -> tuple[str, ...]:
    """Sides, one smart mode, and `faces` (the faces when any are found, else the rest decides)."""
    words = sides(name, raw, POSITIONS | SMART | {"faces"})
    if len(SMART.intersection(words)) > 1:
        raise InvalidParam(f"{name} takes at most one of entropy, edges, focalpoint")
    return words


def auto(name: str, raw: str) -> tuple[str, ...]:
    if "true" in raw.split(","):
        raise UnsupportedParam("auto=true is not supported: imgix documents no meaning for it; use format,compress")
    return word_list(name, raw, frozenset({"format", "compress", "enhance", "redeye"}))


def fm(name: str, raw: str) -> str:
    reason = REFUSED_FORMATS.get(raw)
    if reason is not None:
        raise UnsupportedParam(f"fm={raw} is not supported: {reason}")
    return choice(OUTPUT_FORMATS)(name, raw)  # type: ignore[return-value]


def ratio(name: str, raw: str) -> float:
    left, sep, right = raw.partition(":")
    if not sep:
        raise InvalidParam(f"{name} must be W:H, e.g. 16:9")
    width, height = decimal(name, left), decimal(name, right)
    if width <= 0 or height <= 0:
        raise InvalidParam(f"{name} must be W:H with positive numbers")
    value = width / height
    if not 0.01 <= value <= 100:
        raise ParamOutOfRange(f"{name} must be between 1:100 and 100:1")
    return round(value, 6)


RECT_X = ("left", "center", "right")
RECT_Y = ("top", "middle", "bottom")


def _rect_part(name: str, raw: str, keywords: tuple[str, ...], positive: bool) -> RectPart:
    """Pixels (an integer), a share of the source (a decimal in [0, 1]: `0.25`), or, for x
    and y, where the region sits (`left`, `center`, `right` / `top`, `middle`, `bottom`)."""
    if raw in keywords:
        return raw
    value: int | float
    if "." not in raw:
        value = integer(name, raw, 0, 1_000_000)
    else:
        value = round(decimal(name, raw), 6)
        if value > 1:
            raise InvalidParam(f"{name} takes whole pixels or shares of the source between 0 and 1")
    if value <= 0 and positive:
        raise InvalidParam(f"{name} must have a positive width and height")
    return 0 if value == 0 else value


def rect(name: str, raw: str) -> Rect:
    """imgix's `x,y,w,h`: each a pixel count or a share of the source in [0, 1] (`0.5`), x and
    y also a keyword placing the region. Shares and keywords resolve against the source's
    size when it is known (render/steps.py `rect_box`)."""
    parts = raw.split(",")
    if len(parts) != 4:
        raise InvalidParam(f"{name} must be x,y,w,h: pixels, shares of the source in [0, 1], or keywords for x and y")
    x, y, w, h = parts
    return (
        _rect_part(name, x, RECT_X, False),
        _rect_part(name, y, RECT_Y, False),
        _rect_part(name, w, (), True),
        _rect_part(name, h, (), True),
    )


rect.schema = {  # type: ignore[attr-defined]
    "type": "string",
    "description": "x,y,w,h: pixels or shares in [0, 1] (0.5); x also left/center/right, y top/middle/bottom",
    "examples": ["10,20,300,200", "center,middle,0.5,0.5"],
}


def hue(name: str, raw: str) -> int:
    return clamped(-100_000, 100_000)(name, raw) % 360  # type: ignore[operator]


def filename(name: str, raw: str) -> str:
    value: str = text(255)(name, raw)  # type: ignore[assignment]
    if found := bidi_controls(value):
        # They reorder what a download bar shows: `invoice\u202efdp.exe` reads as `invoiceexe.pdf`.
        raise InvalidParam(f"{name} contains a bidirectional control character ({', '.join(found)})")
    return value


def finish(spec: TransformSpec) -> TransformSpec:
    """imgix's dependencies: forget what cannot change the image, so it cannot mint new
    variants. `ar` acts only with fit=crop or fit=fill, `crop` only where a region is cut
    (fit=crop or min), the focal point only with crop=focalpoint, `fill` only on a fill
    canvas, the trim and mark details only beside `trim` and `mark`."""
    if spec.trim == "color" and spec.trim_color is None:
        raise InvalidParam("trim=color needs trim-color")
    if spec.fit not in RATIO_FITS:
        spec = spec.forget("ar")
    if spec.fit not in ("crop", "min"):
        spec = spec.forget("crop")
    if "focalpoint" not in spec.crop:
        spec = spec.forget("fp_x", "fp_y", "fp_z")
    if spec.fit not in ("fill", "fillmax"):
        spec = spec.forget("fill", "fill_color")
    elif spec.fill in ("blur", "gradient"):
        spec = spec.forget("fill_color")
    elif spec.fill == "solid":
        spec = spec.forget("fill")  # the default: the same canvas as no `fill`, so the same variant
    if spec.trim is None:
        spec = spec.forget("trim_tol")
    if spec.trim != "color":
        spec = spec.forget("trim_color")
    if spec.mark is None:
        spec = spec.forget("mark_align", "mark_alpha", "mark_scale", "mark_pad")
    return spec


FAMILY = Family(
    "core",
    params=(
        Param("w", size),
        Param("h", size),
        Param("dpr", dpr),
        Param("ar", ratio),
        Param("fit", fit),
        Param("crop", crop),
        Param("fp-x", ranged_decimal(0, 1)),
        Param("fp-y", ranged_decimal(0, 1)),
        Param("fp-z", ranged_decimal(1, 100)),
        Param("rect", rect),
        Param("pad", clamped(0, 2048)),
        Param("trim", choice(("auto", "color"))),
        Param("trim-color", color),
        Param("trim-tol", clamped_decimal(0, 255)),
        Param("rot", angle),
        Param("flip", choice(("h", "v", "hv"))),
        Param("bg", color),
        Param("fill", choice(("solid", "blur", "gradient"))),
        Param("fill-color", color),
        Param("blur", clamped(0, 2000)),
        Param("sharp", clamped_decimal(0, 100)),
        Param("bri", clamped(-100, 100)),
        Param("con", clamped(-100, 100)),
        Param("sat", clamped(-100, 100)),
        Param("gam", clamped(-100, 100)),
        Param("hue", hue),
        Param("sepia", clamped(0, 100)),
        Param("monochrome", color),
        Param("invert", boolean),
        Param("fm", fm),
        Param("q", clamped(1, 100)),
        Param("lossless", boolean),
        Param("auto", auto),
        Param("mark", storage_key),
        Param("mark-align", alignment),
        Param("mark-alpha", clamped(0, 100)),
        Param("mark-scale", clamped(1, 100)),
        Param("mark-pad", clamped(0, 2048)),
        Param("dl", filename),
    ),
    finish=finish,
)
