"""`palette=css|json`: the dominant colours of the rendered image, as imgix's colour
palette output: JSON `{"colors": [{"red", "green", "blue" (0-1), "hex"}...], "average_luminance",
"dominant_colors": {"vibrant", "muted", ...: {"red", "green", "blue", "hex"}}}`
or CSS classes `.{prefix}-fg-N {color}` and `.{prefix}-bg-N {background-color}`.

Colours are counted on a copy at most 64 px wide, in 4-bit-per-channel bins; a bin's colour
is the mean of its pixels, bins are taken by size, and a bin closer than 48 (RGB distance)
to one already taken is folded into it, so `colors=6` names six distinct colours."""

from __future__ import annotations

import json
from collections import Counter

import pyvips

from ..spec import TransformSpec

_SAMPLE = 64
_DISTINCT = 48


def sample(image: pyvips.Image) -> pyvips.Image:
    """One small, flattened, in-memory copy: the rendered image is read once, in order."""
    small = image.thumbnail_image(_SAMPLE, height=_SAMPLE) if max(image.width, image.height) > _SAMPLE else image
    if small.hasalpha():
        small = small.flatten(background=[255, 255, 255])
    return small.cast("uchar").copy_memory()


Rgb = tuple[int, int, int]


def _swatches(small: pyvips.Image, count: int) -> list[tuple[Rgb, int]]:
    """Up to `count` distinct colours with their pixel counts, most common first."""
    data = bytes(small.write_to_memory())
    bands = small.bands
    bins: Counter[Rgb] = Counter()
    sums: dict[Rgb, list[int]] = {}
    for i in range(0, len(data), bands):
        r, g, b = data[i], data[i + 1 if bands >= 3 else i], data[i + 2 if bands >= 3 else i]
        key = (r >> 4, g >> 4, b >> 4)
        bins[key] += 1
        total = sums.setdefault(key, [0, 0, 0])
        total[0] += r
        total[1] += g
        total[2] += b
    chosen: list[tuple[Rgb, int]] = []
    for key, n in bins.most_common():
        mean: Rgb = (round(sums[key][0] / n), round(sums[key][1] / n), round(sums[key][2] / n))
        if all(sum((a - b) ** 2 for a, b in zip(mean, c, strict=True)) ** 0.5 >= _DISTINCT for c, _ in chosen):
            chosen.append((mean, n))
        if len(chosen) == count:
            break
    return chosen


def dominant(small: pyvips.Image, count: int) -> list[Rgb]:
    return [colour for colour, _ in _swatches(small, count)]


def _hsl(colour: Rgb) -> tuple[float, float]:
    """(saturation, lightness) in HSL, each 0-1."""
    high, low = max(colour) / 255, min(colour) / 255
    lightness = (high + low) / 2
    if high == low:
        return 0.0, lightness
    return (high - low) / (1 - abs(2 * lightness - 1)), lightness


TARGETS: dict[str, tuple[float, float, float, float, float, float]] = {
    # name: lightness (min, target, max), saturation (min, target, max), as Android's Palette
    "vibrant": (0.3, 0.5, 0.7, 0.35, 1.0, 1.0),
    "muted_light": (0.55, 0.74, 1.0, 0.0, 0.3, 0.4),
    "muted": (0.3, 0.5, 0.7, 0.0, 0.3, 0.4),
    "vibrant_dark": (0.0, 0.26, 0.45, 0.35, 1.0, 1.0),
    "vibrant_light": (0.55, 0.74, 1.0, 0.35, 1.0, 1.0),
    "muted_dark": (0.0, 0.26, 0.45, 0.0, 0.3, 0.4),
}
"""imgix's `dominant_colors` keys, each a window of HSL lightness and saturation and the
point in it that fits best."""


def dominant_colours(small: pyvips.Image) -> dict[str, Rgb]:
    """imgix's named swatches, as Android's Palette picks them (imgix does not publish its
    method): among the image's 16 most common distinct colours, each target takes the one in
    its lightness and saturation window that scores best on closeness to the target
    lightness (weight 6), saturation (3) and how common it is (1); a colour serves one
    target; a target with no colour in its window is left out."""
    swatches = _swatches(small, 16)
    most = max((n for _, n in swatches), default=1)
    taken: dict[str, Rgb] = {}
    for name, (l_min, l_aim, l_max, s_min, s_aim, s_max) in TARGETS.items():
        best: tuple[float, Rgb] | None = None
        for colour, n in swatches:
            saturation, lightness = _hsl(colour)
            if colour in taken.values() or not (l_min <= lightness <= l_max and s_min <= saturation <= s_max):
                continue
            score = 6 * (1 - abs(lightness - l_aim)) + 3 * (1 - abs(saturation - s_aim)) + n / most
            if best is None or score > best[0]:
                best = (score, colour)
        if best is not None:
            taken[name] = best[1]
    return taken


def vibrant(small: pyvips.Image) -> tuple[Rgb, Rgb]:
    """The vibrant dark and vibrant light swatches (fill=gradient's default colours); the
    darkest and lightest common colours when the image has none."""
    named = dominant_colours(small)
    by_lightness = sorted(dominant(small, 16), key=lambda c: _hsl(c)[1])
    return named.get("vibrant_dark", by_lightness[0]), named.get("vibrant_light", by_lightness[-1])


def _json_colour(colour: Rgb) -> dict[str, object]:
    r, g, b = colour
    return {"red": round(r / 255, 6), "green": round(g / 255, 6), "blue": round(b / 255, 6), "hex": _hex(colour)}


def _hex(colour: Rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _luminance(small: pyvips.Image) -> float:
    return round(small.colourspace("b-w").extract_band(0).avg() / 255, 6)


def render(image: pyvips.Image, spec: TransformSpec) -> tuple[bytes, str]:
    """The palette body and its format (`css` or `json`)."""
    small = sample(image)
    colours = dominant(small, spec.colors)
    if spec.palette == "css":
        lines = []
        for n, hx in enumerate(map(_hex, colours), start=1):
            lines.append(f".{spec.prefix}-fg-{n} {{ color: {hx} !important; }}")
            lines.append(f".{spec.prefix}-bg-{n} {{ background-color: {hx} !important; }}")
        return ("\n".join(lines) + "\n").encode(), "css"
    body = {
        "colors": [_json_colour(c) for c in colours],
        "average_luminance": _luminance(small),
        "dominant_colors": {name: _json_colour(c) for name, c in dominant_colours(small).items()},
    }
    return json.dumps(body).encode(), "json"
