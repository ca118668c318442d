"""The frozen transform spec and its canonical string.

A `TransformSpec` is what a query string means, after parsing, defaults and clamping.
Its canonical string (parameters sorted, defaults dropped, numbers in one form) is the
core of the cache key and of signed messages, so two URLs that mean the same render
share one variant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from urllib.parse import quote

Color = tuple[int, int, int, int]
"""An RGBA colour, 0-255 per channel."""
RectPart = int | float | str
"""One `rect` value: pixels (int), a share of the source (float in [0, 1]) or a keyword."""
Rect = tuple[RectPart, RectPart, RectPart, RectPart]


@dataclass(frozen=True, slots=True)
class TransformSpec:
    """Every supported imgix parameter; field `fp_x` is parameter `fp-x`, and so on.

    `w` and `h` are pixels when >= 1 and a share of the source when in (0, 1); `dpr` is
    already folded into pixel sizes, so it stays above 1 only beside a fractional size.
    """

    w: float | None = None
    h: float | None = None
    dpr: float = 1.0
    ar: float | None = None
    fit: str = "clip"
    crop: tuple[str, ...] = ()
    fp_x: float = 0.5
    fp_y: float = 0.5
    fp_z: float = 1.0
    rect: Rect | None = None
    pad: int = 0
    trim: str | None = None
    trim_color: Color | None = None
    trim_tol: float = 10.0
    rot: float = 0.0
    """Degrees counter-clockwise in [0, 360); quarter turns are exact, other angles grow the canvas."""
    flip: str | None = None
    bg: Color | None = None
    fill: str | None = None
    fill_color: Color | None = None
    blur: int = 0
    sharp: float = 0.0
    bri: int = 0
    con: int = 0
    sat: int = 0
    gam: int = 0
    hue: int = 0
    sepia: int = 0
    monochrome: Color | None = None
    invert: bool = False
    fm: str | None = None
    q: int | None = None
    lossless: bool = False
    auto: tuple[str, ...] = ()
    mark: str | None = None
    mark_align: tuple[str, ...] = ("bottom", "right")
    mark_alpha: int = 100
    mark_scale: int | None = None
    mark_pad: int = 5
    dl: str | None = None
    # -- size bounds, orientation, border and padding (urlparams/layout.py) --
    min_w: int | None = None
    max_w: int | None = None
    min_h: int | None = None
    max_h: int | None = None
    orient: int | None = None
    pad_top: int | None = None
    pad_right: int | None = None
    pad_bottom: int | None = None
    pad_left: int | None = None
    border: tuple[int, Color] | None = None
    border_top: int | None = None
    border_right: int | None = None
    border_bottom: int | None = None
    border_left: int | None = None
    border_radius: tuple[int, int, int, int] | None = None
    border_radius_inner: tuple[int, int, int, int] | None = None
    # -- mask, trim details, transparency grid (urlparams/layout.py) --
    mask: str | None = None
    """`ellipse`, `corners`, or the storage key of a mask image."""
    corner_radius: tuple[int, int, int, int] | None = None
    mask_bg: Color | None = None
    trim_md: float = 11.0
    trim_sd: float = 10.0
    trim_pad: int = 0
    transparency: str | None = None
    grid_colors: tuple[Color, Color] = ((0xD0, 0xD7, 0xDD, 255), (255, 255, 255, 255))
    grid_size: int = 4
    # -- adjustments, stylize, noise reduction (urlparams/tone.py) --
    exp: int = 0
    high: int = 0
    shad: float = 0.0
    vib: int = 0
    usm: int = 0
    usmrad: float = 2.5
    px: int = 0
    htn: int = 0
    duotone: tuple[Color, Color] | None = None
    duotone_alpha: int = 100
    nr: int | None = None
    nrs: int | None = None
    # -- output details, palettes, focal point debug, client hints (urlparams/output.py) --
    chromasub: int | None = None
    colorquant: int | None = None
    cs: str | None = None
    dpi: int | None = None
    palette: str | None = None
    colors: int = 6
    prefix: str = "image"
    fp_debug: bool = False
    ch: tuple[str, ...] = ()
    # --- overlays (urlparams/text.py, faces.py, overlay.py): text, faces, watermark details, blending
    txt: str | None = None
    txt_font: str = "sans-serif"
    txt_size: int = 12
    txt_color: Color = (0, 0, 0, 255)
    txt_align: tuple[str, ...] = ("bottom", "right")
    txt_pad: int = 10
    txt_width: int | None = None
    txt_fit: str | None = None
    txt_clip: tuple[str, ...] = ("end",)
    txt_lig: int = 1
    txt_line: int = 0
    txt_line_color: Color = (255, 255, 255, 255)
    txt_shad: float = 0.0
    txt_lead: int = 0
    txt_track: int = 0
    faces: bool = False
    faceindex: int = 1
    facepad: float = 1.0
    mark_w: float | None = None
    mark_h: float | None = None
    mark_fit: str = "clip"
    mark_x: int | None = None
    mark_y: int | None = None
    mark_rot: float = 0.0
    mark_tile: str | None = None
    mark_base: str | None = None
    """Folded into `mark` by the family's finish step (a key prefix), so always None in a parsed spec."""
    blend: str | None = None
    """A storage key; a colour given as `blend` is moved to `blend_color` when parsed."""
    blend_color: Color | None = None
    blend_mode: str = "overlay"
    blend_alpha: int = 100
    blend_align: tuple[str, ...] = ("left", "top")
    blend_pad: int = 0
    blend_x: int | None = None
    blend_y: int | None = None
    blend_w: float | None = None
    blend_h: float | None = None
    blend_fit: str = "clip"
    blend_crop: tuple[str, ...] = ()
    blend_size: str | None = None
    # -- gradient fill, from imgix's documentation pages (urlparams/fill.py) --
    fill_gradient_type: str = "linear"
    fill_gradient_linear: tuple[Color, Color] | None = None
    fill_gradient_linear_direction: tuple[str, ...] = ("bottom",)
    fill_gradient_radial: tuple[Color, Color] | None = None
    fill_gradient_radial_x: float = 0.5
    fill_gradient_radial_y: float = 0.5
    fill_gradient_radial_radius: tuple[int, int] | None = None
    fill_gradient_cs: str = "srgb"
    fill_max: bool = False
    """`fill-max=source`: each side of a fit=fillmax canvas is at most the source's (imgix's pages)."""

    @property
    def negotiates(self) -> bool:
        """Whether the output format follows the client's Accept header (`auto=format`, no `fm`)."""
        return self.fm is None and "format" in self.auto

    @property
    def needs_render(self) -> bool:
        """False when the original bytes answer the request (only `dl`, or nothing, was asked)."""
        return any(getattr(self, name) != getattr(_DEFAULT, name) for name in _RENDER_FIELDS)

    @property
    def is_json(self) -> bool:
        return self.fm == "json"

    @property
    def mask_key(self) -> str | None:
        """The storage key of a mask image (`mask` that is not a shape)."""
        return self.mask if self.mask not in (None, *MASK_SHAPES) else None

    def forget(self, *fields: str) -> TransformSpec:
        """This spec with `fields` back at their defaults (a family's finish step forgets what
        cannot act, so it mints no variant). Fields already at their default are left out, and
        with none left this spec itself is returned: most finish steps forget what no URL set,
        and rebuilding a 130-field spec for nothing cost ~0.7 ms per parsed URL."""
        defaults = {name: getattr(_DEFAULT, name) for name in fields}
        changes = {name: value for name, value in defaults.items() if getattr(self, name) != value}
        return dataclasses.replace(self, **changes) if changes else self

    def storage_keys(self) -> dict[str, str]:
        """Other images in the same storage this render reads, by parameter: `mark`, `mask`, `blend`."""
        keys = {"mark": self.mark, "mask": self.mask_key, "blend": self.blend}
        return {name: key for name, key in keys.items() if key is not None}


MASK_SHAPES = ("ellipse", "corners")


_DEFAULT = TransformSpec()
_FIELDS = tuple(f.name for f in dataclasses.fields(TransformSpec))
_RENDER_FIELDS = tuple(name for name in _FIELDS if name != "dl")


def param_name(field: str) -> str:
    """The URL parameter for a spec field: `fp_x` -> `fp-x`."""
    return field.replace("_", "-")


def format_number(value: float) -> str:
    """One spelling per number: `100`, `0.5`, `1.333333` (never `100.0` or `1e3`)."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def format_color(color: Color) -> str:
    """imgix's 8-digit ARGB hex, lower case."""
    r, g, b, a = color
    return f"{a:02x}{r:02x}{g:02x}{b:02x}"


def _format_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def canonical(spec: TransformSpec) -> str:
    """The spec as a sorted query string with defaults dropped; stable across releases."""
    parts = []
    for field in _FIELDS:
        value = getattr(spec, field)
        if value == getattr(_DEFAULT, field):
            continue
        if field in _COLOR_FIELDS:
            text = format_color(value)
        elif field in _COLOR_PAIR_FIELDS:
            text = ",".join(format_color(c) for c in value)
        elif field == "border":
            text = f"{value[0]},{format_color(value[1])}"
        elif field == "ar":
            text = f"{format_number(value)}:1"  # the parameter is spelled W:H
        else:
            text = _format_value(value)
        parts.append(f"{param_name(field)}={quote(text, safe=',:.-_')}")
    return "&".join(sorted(parts))


_COLOR_FIELDS = frozenset({"trim_color", "bg", "fill_color", "monochrome", "mask_bg"})
_COLOR_FIELDS |= {"txt_color", "txt_line_color", "blend_color"}
_COLOR_PAIR_FIELDS = frozenset({"duotone", "grid_colors", "fill_gradient_linear", "fill_gradient_radial"})
