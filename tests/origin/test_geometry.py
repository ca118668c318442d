"""imgix's fit arithmetic as a table: source size x request -> output size, then regions.

Specs come from `parse_query`, as in production, so dpr folding and the output cap are
part of what the table checks. Semantics (docs.imgix.com, `fit`):
clip fits inside the box and may enlarge; max is clip that never enlarges; min crops to
the requested ratio without exceeding the source; crop fills the box and crops the rest;
fill contains the image on a w x h canvas; fillmax is fill that never enlarges; scale
distorts to exactly w x h; clamp is fill whose canvas repeats the edge pixels. With a
single size, every mode behaves like clip (max for the never-enlarging max/min/fillmax).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from origin.errors import InvalidParam
from origin.geometry import Plan, aligned, plan
from origin.params import parse_query
from origin.settings import defaults

LIMITS = defaults().output

CAP = 4096


def make_plan(src: tuple[int, int], query: str, max_side: int = CAP) -> Plan:
    spec = parse_query(parse_qsl(query, keep_blank_values=True), LIMITS)
    return plan(src[0], src[1], spec, max_side)


LANDSCAPE = (400, 300)
SMALL = (100, 50)

TABLE = [
    # clip: fit inside, may enlarge, the constraining side matches the request
    (LANDSCAPE, "w=200", (200, 150)),
    (LANDSCAPE, "h=150", (200, 150)),
    (LANDSCAPE, "w=200&h=200", (200, 150)),
    (LANDSCAPE, "w=200&h=100", (133, 100)),
    (LANDSCAPE, "w=800", (800, 600)),
    (LANDSCAPE, "w=800&h=900", (800, 600)),
    (LANDSCAPE, "fit=clip&h=600", (800, 600)),
    (SMALL, "w=300&h=300", (300, 150)),
    # max: clip that never enlarges
    (LANDSCAPE, "fit=max&w=200", (200, 150)),
    (LANDSCAPE, "fit=max&w=800", (400, 300)),
    (LANDSCAPE, "fit=max&h=600", (400, 300)),
    (LANDSCAPE, "fit=max&w=800&h=900", (400, 300)),
    (LANDSCAPE, "fit=max&w=200&h=100", (133, 100)),
    # min: the requested ratio, never larger than the source
    (LANDSCAPE, "fit=min&w=200&h=200", (200, 200)),
    (LANDSCAPE, "fit=min&w=800&h=800", (300, 300)),
    (LANDSCAPE, "fit=min&w=800&h=400", (400, 200)),
    (LANDSCAPE, "fit=min&w=100&h=300", (100, 300)),
    (LANDSCAPE, "fit=min&w=200", (200, 150)),
    (LANDSCAPE, "fit=min&w=800", (400, 300)),
    (SMALL, "fit=min&w=1000&h=1000", (50, 50)),
    # crop: exactly w x h, enlarging if needed
    (LANDSCAPE, "fit=crop&w=200&h=200", (200, 200)),
    (LANDSCAPE, "fit=crop&w=800&h=100", (800, 100)),
    (LANDSCAPE, "fit=crop&w=100&h=300", (100, 300)),
    (LANDSCAPE, "fit=crop&w=1000&h=1000", (1000, 1000)),
    (LANDSCAPE, "fit=crop&w=200", (200, 150)),
    (LANDSCAPE, "fit=crop&h=600", (800, 600)),
    # crop + ar: one size completed by the ratio, none given crops the source to it
    (LANDSCAPE, "fit=crop&w=200&ar=1:1", (200, 200)),
    (LANDSCAPE, "fit=crop&h=100&ar=2:1", (200, 100)),
    (LANDSCAPE, "fit=crop&w=160&ar=16:9", (160, 90)),
    (LANDSCAPE, "fit=crop&ar=1:1", (300, 300)),
    (LANDSCAPE, "fit=crop&ar=16:9", (400, 225)),
    (LANDSCAPE, "fit=crop&ar=1:2", (150, 300)),
    (LANDSCAPE, "fit=crop&w=200&h=100&ar=1:1", (200, 100)),
    (LANDSCAPE, "fit=clip&w=200&ar=1:1", (200, 150)),
    # fill: contained on a w x h canvas, enlarging
    (LANDSCAPE, "fit=fill&w=200&h=200", (200, 200)),
    (LANDSCAPE, "fit=fill&w=800&h=800", (800, 800)),
    (LANDSCAPE, "fit=fill&w=200", (200, 150)),
    (LANDSCAPE, "fit=fill&h=600", (800, 600)),
    # fillmax: like fill, the image never enlarged; the canvas is still w x h
    (LANDSCAPE, "fit=fillmax&w=800&h=800", (800, 800)),
    (LANDSCAPE, "fit=fillmax&w=200&h=200", (200, 200)),
    (LANDSCAPE, "fit=fillmax&w=200", (200, 150)),
    # imgix's example: never enlarged, but the canvas is the full box (300x200, w=600 -> 600x400)
    (LANDSCAPE, "fit=fillmax&w=800", (800, 600)),
    ((300, 200), "fit=fillmax&w=600", (600, 400)),
    ((300, 200), "fit=fillmax&h=400", (600, 400)),
    # ar sets the frame for fit=fill too (imgix: fit=fill&w=100&ar=1:1 on 3:2 -> 100x100)
    ((300, 200), "fit=fill&w=100&ar=1:1", (100, 100)),
    ((300, 200), "fit=fill&h=100&ar=2:1", (200, 100)),
    # scale: exactly w x h, distorted
    (LANDSCAPE, "fit=scale&w=200&h=200", (200, 200)),
    (LANDSCAPE, "fit=scale&w=800&h=100", (800, 100)),
    (LANDSCAPE, "fit=scale&w=200", (200, 150)),
    (LANDSCAPE, "fit=scale&h=600", (800, 600)),
    # clamp: contained on a w x h canvas of edge pixels
    (LANDSCAPE, "fit=clamp&w=200&h=200", (200, 200)),
    (LANDSCAPE, "fit=clamp&w=800&h=700", (800, 700)),
    (LANDSCAPE, "fit=clamp&w=200", (200, 150)),
    # fractional sizes are shares of the source
    (LANDSCAPE, "w=0.5", (200, 150)),
    (LANDSCAPE, "h=0.25", (100, 75)),
    (LANDSCAPE, "fit=crop&w=0.5&h=0.5", (200, 150)),
    (LANDSCAPE, "fit=crop&w=0.25&h=100", (100, 100)),
    (LANDSCAPE, "fit=scale&w=0.5&h=0.1", (200, 30)),
    # dpr multiplies the sizes (folded by params for pixels, applied here for shares)
    (LANDSCAPE, "w=100&dpr=2", (200, 150)),
    (LANDSCAPE, "fit=crop&w=100&h=100&dpr=3", (300, 300)),
    (LANDSCAPE, "w=0.5&dpr=2", (400, 300)),
    (LANDSCAPE, "fit=max&w=300&dpr=2", (400, 300)),
    (LANDSCAPE, "dpr=2", (400, 300)),
    # no size: the source as it is
    (LANDSCAPE, "", (400, 300)),
    (LANDSCAPE, "fit=crop", (400, 300)),
    # pad lies inside the requested size
    (LANDSCAPE, "w=200&pad=10", (200, 155)),
    (LANDSCAPE, "pad=10", (420, 320)),
    (LANDSCAPE, "fit=fill&w=200&h=200&pad=10", (200, 200)),
    (LANDSCAPE, "fit=crop&w=200&h=100&pad=10", (200, 100)),
    (LANDSCAPE, "fit=clamp&w=300&h=300&pad=20", (300, 300)),
    # the output cap: clamped, never refused, ratio kept
    (LANDSCAPE, "w=8192", (4096, 3072)),
    (LANDSCAPE, "h=8192", (4096, 3072)),
    (LANDSCAPE, "w=3000&dpr=4", (4096, 3072)),
    (LANDSCAPE, "fit=crop&w=5000&h=100", (4096, 82)),
    (LANDSCAPE, "fit=scale&w=5000&h=5000", (4096, 4096)),
    (LANDSCAPE, "fit=crop&w=4096&ar=1:2", (2048, 4096)),
    (LANDSCAPE, "w=0.5&h=8192", (200, 150)),
    ((4000, 3000), "w=0.5&dpr=4", (4096, 3072)),
    ((8000, 1000), "", (4096, 512)),
    ((8000, 1000), "fm=png&pad=48", (4096, 596)),
    ((1000, 16000), "w=1000&pad=10", (275, 4096)),
    (LANDSCAPE, "w=1&pad=2048", (4095, 4095)),
    (LANDSCAPE, "pad=2048", (4096, 4096)),
]


@pytest.mark.parametrize(("src", "query", "expected"), TABLE, ids=[f"{s[0]}x{s[1]}?{q}" for s, q, _ in TABLE])
def test_output_size(src, query, expected):
    assert make_plan(src, query).output_size == expected


@pytest.mark.parametrize("fit", ["clip", "max", "min", "crop", "fill", "fillmax", "scale", "clamp"])
@pytest.mark.parametrize("query", ["w=5000", "h=8192", "w=4000&h=5000", "w=0.9&dpr=4&h=0.9"])
def test_no_fit_exceeds_the_cap(fit, query):
    width, height = make_plan((3000, 2000), f"fit={fit}&{query}").output_size
    assert max(width, height) <= CAP
    assert min(width, height) >= 1


def test_fill_centres_the_image_on_its_canvas():
    result = make_plan(LANDSCAPE, "fit=fill&w=200&h=200")
    assert (result.size, result.canvas, result.offset) == ((200, 150), (200, 200), (0, 25))


def test_fillmax_keeps_the_source_size_on_a_larger_canvas():
    result = make_plan(LANDSCAPE, "fit=fillmax&w=800&h=800")
    assert (result.size, result.canvas, result.offset) == ((400, 300), (800, 800), (200, 250))


def test_pad_is_kept_apart_from_the_canvas():
    result = make_plan(LANDSCAPE, "fit=clamp&w=300&h=300&pad=20")
    assert (result.size, result.canvas, result.offset, result.pad) == (
        (260, 195),
        (260, 260),
        (0, 32),
        (20, 20, 20, 20),
    )


def test_scale_and_clip_use_the_whole_source():
    for query in ("fit=scale&w=10&h=90", "w=10", "fit=fill&w=50&h=50"):
        assert make_plan(LANDSCAPE, query).region == (0, 0, 400, 300)


@pytest.mark.parametrize(
    ("query", "region"),
    [
        ("fit=crop&w=100&h=100", (50, 0, 300, 300)),
        ("fit=crop&w=100&h=100&crop=left", (0, 0, 300, 300)),
        ("fit=crop&w=100&h=100&crop=right", (100, 0, 300, 300)),
        ("fit=crop&w=100&h=100&crop=top,left", (0, 0, 300, 300)),
        ("fit=crop&w=100&h=100&crop=bottom,right", (100, 0, 300, 300)),
        ("fit=crop&w=400&h=100", (0, 100, 400, 100)),
        ("fit=crop&w=400&h=100&crop=top", (0, 0, 400, 100)),
        ("fit=crop&w=400&h=100&crop=bottom", (0, 200, 400, 100)),
        ("fit=crop&w=400&h=100&crop=bottom,left", (0, 200, 400, 100)),
        ("fit=crop&w=800&h=100", (0, 125, 400, 50)),
        ("fit=min&w=800&h=400&crop=top", (0, 0, 400, 200)),
        ("fit=crop&ar=1:1&crop=right", (100, 0, 300, 300)),
    ],
)
def test_crop_region_follows_crop_sides(query, region):
    assert make_plan(LANDSCAPE, query).region == region


@pytest.mark.parametrize(
    ("fp", "region"),
    [
        ("fp-x=0.5&fp-y=0.5", (50, 0, 300, 300)),
        ("fp-x=0&fp-y=0", (0, 0, 300, 300)),
        ("fp-x=1&fp-y=1", (100, 0, 300, 300)),
        ("fp-x=0.5&fp-y=0.5&fp-z=2", (125, 75, 150, 150)),
        ("fp-x=0.9&fp-y=0.1&fp-z=2", (250, 0, 150, 150)),
        ("fp-x=0&fp-y=1&fp-z=3", (0, 200, 100, 100)),
        ("fp-x=0.25&fp-y=0.5&fp-z=5", (70, 120, 60, 60)),
    ],
)
def test_focal_point_region_is_clamped_inside_the_image(fp, region):
    result = make_plan(LANDSCAPE, f"fit=crop&w=100&h=100&crop=focalpoint&{fp}")
    assert result.region == region
    assert result.size == (100, 100)
    x, y, w, h = result.region
    assert 0 <= x and 0 <= y and x + w <= 400 and y + h <= 300


def test_focal_point_is_ignored_without_crop_focalpoint():
    assert make_plan(LANDSCAPE, "fit=crop&w=100&h=100&fp-x=0&fp-z=2").region == (50, 0, 300, 300)


@pytest.mark.parametrize(("word", "mode"), [("entropy", "entropy"), ("edges", "attention")])
def test_smart_crops_are_left_to_libvips(word, mode):
    result = make_plan(LANDSCAPE, f"fit=crop&w=100&h=100&crop={word}")
    assert result.smart == mode
    assert result.region[2:] == (300, 300)


def test_positional_crop_is_not_smart():
    assert make_plan(LANDSCAPE, "fit=crop&w=100&h=100&crop=top").smart is None


def test_tiny_outputs_never_reach_zero_pixels():
    assert make_plan((4000, 10), "w=100").output_size == (100, 1)
    assert make_plan((10, 4000), "fit=crop&w=1&h=1").output_size == (1, 1)


def test_smaller_cap_from_settings():
    assert make_plan(LANDSCAPE, "w=800", max_side=500).output_size == (500, 375)
    assert make_plan(LANDSCAPE, "", max_side=200).output_size == (200, 150)


@pytest.mark.parametrize(
    ("src", "query", "canvas", "size"),
    [  # imgix's own table for fill-max=source (its fill-max page): source, request, canvas
        ((300, 200), "fit=fillmax&w=400&h=400&fill-max=source", (300, 200), (300, 200)),
        ((300, 200), "fit=fillmax&w=400&h=150&fill-max=source", (300, 150), (225, 150)),
        ((300, 200), "fit=fillmax&w=400&fill-max=source", (300, 200), (300, 200)),
        ((532, 800), "fit=fillmax&w=800&h=800&fill-max=Source", (532, 800), (532, 800)),
        ((4200, 2800), "fit=fillmax&w=400&h=400&fill-max=source", (400, 400), (400, 267)),
    ],
)
def test_fill_max_source_caps_the_fillmax_canvas_at_the_source(src, query, canvas, size):
    result = make_plan(src, query)
    assert (result.canvas or result.size, result.size) == (canvas, size)
    without = make_plan(src, query.replace("&fill-max=source", "").replace("&fill-max=Source", ""))
    assert without.size == result.size  # only the padding changes, never the image


def test_fill_max_needs_fit_fillmax_and_takes_only_source():
    assert parse_query(parse_qsl("w=400&fit=fill&fill-max=source"), LIMITS).fill_max is False
    assert parse_query(parse_qsl("w=400&fit=fillmax&fill-max=SOURCE"), LIMITS) == parse_query(
        parse_qsl("w=400&fit=fillmax&fill-max=source"), LIMITS
    )
    with pytest.raises(InvalidParam, match="fill-max takes one value: source"):
        parse_query(parse_qsl("w=400&fit=fillmax&fill-max=canvas"), LIMITS)


@pytest.mark.parametrize(
    ("words", "default", "expected"),
    [
        ((), ("center", "middle"), (40, 20)),
        (("left", "top"), ("center", "middle"), (5, 5)),
        (("bottom", "right"), ("center", "middle"), (75, 35)),
        (("center",), ("right", "bottom"), (40, 35)),
        (("faces", "left"), ("center", "middle"), (5, 20)),
    ],
)
def test_aligned_places_a_block_pad_in_from_the_named_sides(words, default, expected):
    assert aligned((100, 60), (20, 20), words, 5, default) == expected
