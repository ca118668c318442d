"""`palette=css|json`: the dominant colours of the rendered image, as imgix's colour
palette output: JSON `{"colors": [{"red", "green", "blue" (0-1), "hex"}...], "average_luminance"}`
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


def dominant(small: pyvips.Image, count: int) -> list[tuple[int, int, int]]:
    data = bytes(small.write_to_memory())
    bands = small.bands
    bins: Counter[tuple[int, int, int]] = Counter()
    sums: dict[tuple[int, int, int], list[int]] = {}
    for i in range(0, len(data), bands):
        r, g, b = data[i], data[i + 1 if bands >= 3 else i], data[i + 2 if bands >= 3 else i]
        key = (r >> 4, g >> 4, b >> 4)
        bins[key] += 1
        total = sums.setdefault(key, [0, 0, 0])
        total[0] += r
        total[1] += g
        total[2] += b
    chosen: list[tuple[int, int, int]] = []
    for key, n in bins.most_common():
        mean = tuple(round(v / n) for v in sums[key])
        if all(sum((a - b) ** 2 for a, b in zip(mean, c, strict=True)) ** 0.5 >= _DISTINCT for c in chosen):
            chosen.append(mean)  # type: ignore[arg-type]
        if len(chosen) == count:
            break
    return chosen


def _hsl(colour: tuple[int, int, int]) -> tuple[float, float]:
    """(saturation, lightness) in HSL, each 0-1."""
    high, low = max(colour) / 255, min(colour) / 255
    lightness = (high + low) / 2
    if high == low:
        return 0.0, lightness
    return (high - low) / (1 - abs(2 * lightness - 1)), lightness


def vibrant(small: pyvips.Image) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The vibrant dark and vibrant light colours: the most saturated of the dominant colours
    below and at or above mid-lightness; the darkest or lightest when a side has none."""
    colours = dominant(small, 16)
    dark = [c for c in colours if _hsl(c)[1] < 0.5]
    light = [c for c in colours if _hsl(c)[1] >= 0.5]
    by_lightness = sorted(colours, key=lambda c: _hsl(c)[1])
    return (
        max(dark, key=lambda c: _hsl(c)[0]) if dark else by_lightness[0],
        max(light, key=lambda c: _hsl(c)[0]) if light else by_lightness[-1],
    )


def _luminance(small: pyvips.Image) -> float:
    return round(small.colourspace("b-w").extract_band(0).avg() / 255, 6)


def render(image: pyvips.Image, spec: TransformSpec) -> tuple[bytes, str]:
    """The palette body and its format (`css` or `json`)."""
    small = sample(image)
    colours = dominant(small, spec.colors)
    hexes = ["#{:02x}{:02x}{:02x}".format(*c) for c in colours]
    if spec.palette == "css":
        lines = []
        for n, hx in enumerate(hexes, start=1):
            lines.append(f".{spec.prefix}-fg-{n} {{ color: {hx} !important; }}")
            lines.append(f".{spec.prefix}-bg-{n} {{ background-color: {hx} !important; }}")
        return ("\n".join(lines) + "\n").encode(), "css"
    body = {
        "colors": [
            {"red": round(r / 255, 6), "green": round(g / 255, 6), "blue": round(b / 255, 6), "hex": hx}
            for (r, g, b), hx in zip(colours, hexes, strict=True)
        ],
        "average_luminance": _luminance(small),
    }
    return json.dumps(body).encode(), "json"
