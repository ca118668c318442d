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


def _sample(image: pyvips.Image) -> pyvips.Image:
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


def _luminance(small: pyvips.Image) -> float:
    return round(small.colourspace("b-w").extract_band(0).avg() / 255, 6)


def render(image: pyvips.Image, spec: TransformSpec) -> tuple[bytes, str]:
    """The palette body and its format (`css` or `json`)."""
    small = _sample(image)
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
