"""The renderer on real images made with pyvips: what users see, checked by pixel and magic bytes.

The quadrants pattern (top-left red, top-right green, bottom-left blue, bottom-right
white) tells a crop, a rotation or a watermark apart by reading a few pixels.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import replace
from urllib.parse import parse_qsl

import pytest
import pyvips

from origin.errors import CorruptImage, ImageTooLarge, InvalidParam, RenderTimeout, TooManyFrames, UnsupportedMedia
from origin.formats import Accepts, negotiate, sniff
from origin.geometry import plan
from origin.params import parse_query
from origin.render import RenderConfig, Rendered, RenderGuard, describe, harden, probe, render
from origin.render.pipeline import jpeg_shrink
from origin.settings import defaults
from tests.images import BLUE, GREEN, RED, WHITE, close, decode, flat, jpeg, magic, pixel, png, quadrants

LIMITS = defaults().output

CYAN, MAGENTA, BLACK = (0, 255, 255), (255, 0, 255), (0, 0, 0)
CONFIG = defaults().render


@pytest.fixture(scope="module", autouse=True)
def hardened() -> None:
    harden()


def spec_of(query: str):  # type: ignore[no-untyped-def]
    return parse_query(parse_qsl(query, keep_blank_values=True), LIMITS)


def run(
    data: bytes,
    query: str = "",
    accepts: Accepts = Accepts.LEGACY,
    config: RenderConfig = CONFIG,
    mark: bytes | None = None,
    guard: RenderGuard | None = None,
) -> Rendered:
    return render(data, spec_of(query), accepts, config, mark, guard or RenderGuard())


def size(rendered: Rendered) -> tuple[int, int]:
    """The decoded size, checked against what render() reports."""
    image = decode(rendered.body)
    assert (image.width, image.height) == (rendered.width, rendered.height)
    return image.width, image.height


def corners(data: bytes, inset: int = 3) -> tuple[tuple[int, ...], ...]:
    image = decode(data)
    w, h = image.width - 1 - inset, image.height - 1 - inset
    return tuple(pixel(image, x, y)[:3] for x, y in ((inset, inset), (w, inset), (inset, h), (w, h)))


def assert_corners(data: bytes, expected: tuple[tuple[int, ...], ...]) -> None:
    actual = corners(data)
    assert all(close(a, e) for a, e in zip(actual, expected, strict=True)), (actual, expected)


def with_fields(image: pyvips.Image, **ints: int) -> pyvips.Image:
    image = image.copy()
    for name, value in ints.items():
        image.set_type(pyvips.GValue.gint_type, name.replace("_", "-"), value)
    return image


def animated_gif(frames: int = 5, width: int = 40, height: int = 30) -> bytes:
    colours = [RED, GREEN, BLUE, WHITE, (255, 255, 0), CYAN, MAGENTA][:frames]
    strip = pyvips.Image.arrayjoin([flat(width, height, c) for c in colours], across=1)
    strip = with_fields(strip, page_height=height, loop=0)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [80] * frames)
    return strip.gifsave_buffer()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` x `height` over a few bytes of data (a pixel bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# -- sizes --------------------------------------------------------------------------------

FIT_QUERIES = [
    "w=100",
    "h=30",
    "w=0.5",
    "fit=max&w=400",
    "fit=min&w=400&h=400",
    "fit=crop&w=50&h=80",
    "fit=crop&w=90&ar=3:1",
    "fit=fill&w=100&h=100",
    "fit=fillmax&w=400&h=300",
    "fit=scale&w=30&h=90",
    "fit=clamp&w=100&h=100",
    "w=100&pad=4",
    "w=60&dpr=2",
    "rect=10,10,100,60&w=50",
    "rot=90&w=40",
]


@pytest.mark.parametrize("query", FIT_QUERIES)
@pytest.mark.parametrize("source", ["png", "jpg"])
def test_output_size_matches_the_plan(source, query):
    data = png(200, 100) if source == "png" else jpeg(200, 100)
    info = probe(data, CONFIG)
    expected = _logical(info.width, info.height, spec_of(query))
    rendered = run(data, query + "&fm=png")
    assert size(rendered) == expected


def _logical(width: int, height: int, spec) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    if spec.rect:
        x, y, w, h = spec.rect
        width, height = min(w, width - x), min(h, height - y)
    if spec.rot in (90, 270):
        width, height = height, width
    return plan(width, height, spec, CONFIG.max_output_side).output_size


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("w=100", (100, 75)),
        ("w=100&h=100&fit=crop", (100, 100)),
        ("w=0.25", (200, 150)),
        ("fit=fill&w=120&h=120", (120, 120)),
        ("h=601", (801, 601)),
    ],
)
def test_jpeg_shrink_on_load_still_gives_exact_sizes(query, expected):
    assert size(run(jpeg(800, 600), query)) == expected


# -- regions: crop, rect, rotation, flips, orientation -----------------------------------


@pytest.mark.parametrize("source", [png, jpeg])
@pytest.mark.parametrize(
    ("dims", "query", "points"),
    [
        ((200, 100), "fit=crop&w=20&h=40&crop=left", {(10, 8): RED, (10, 32): BLUE}),
        ((200, 100), "fit=crop&w=20&h=40&crop=right", {(10, 8): GREEN, (10, 32): WHITE}),
        ((200, 100), "fit=crop&w=20&h=40&crop=top,left", {(10, 8): RED, (10, 32): BLUE}),
        ((200, 100), "fit=crop&w=20&h=40&crop=bottom,right", {(10, 8): GREEN, (10, 32): WHITE}),
        ((100, 200), "fit=crop&w=40&h=20&crop=top", {(8, 10): RED, (32, 10): GREEN}),
        ((100, 200), "fit=crop&w=40&h=20&crop=bottom", {(8, 10): BLUE, (32, 10): WHITE}),
        ((100, 200), "fit=crop&w=40&h=20&crop=bottom,left", {(8, 10): BLUE, (32, 10): WHITE}),
        (
            (200, 100),
            "fit=crop&w=40&h=20&crop=focalpoint&fp-x=0.25&fp-y=0.25&fp-z=2",
            {(20, 10): RED, (3, 3): RED, (36, 16): RED},
        ),
        ((200, 100), "fit=crop&w=40&h=20&crop=focalpoint&fp-x=0.75&fp-y=0.75&fp-z=2", {(20, 10): WHITE, (3, 3): WHITE}),
        ((200, 100), "fit=crop&w=40&h=20&crop=focalpoint&fp-x=1&fp-y=0&fp-z=2", {(20, 10): GREEN}),
        ((200, 100), "fit=min&w=100&h=100&crop=right", {(75, 25): GREEN, (75, 75): WHITE}),
        ((200, 100), "rect=100,50,100,50", {(50, 25): WHITE}),
        ((200, 100), "rect=0,50,100,50", {(50, 25): BLUE}),
        ((200, 100), "rect=150,0,500,500&fm=png", {(25, 25): GREEN, (25, 75): WHITE}),
        ((200, 100), "rect=0,0,100,50&w=10", {(5, 2): RED}),
    ],
)
def test_region_taken(source, dims, query, points):
    rendered = run(source(*dims), query)
    for (x, y), colour in points.items():
        assert close(pixel(rendered.body, x, y), colour), (query, (x, y), pixel(rendered.body, x, y))


def test_rect_sizes_and_clipping():
    assert size(run(png(200, 100), "rect=150,0,500,500")) == (50, 100)
    assert size(run(png(200, 100), "rect=10,20,30,40")) == (30, 40)


def test_rect_outside_the_image_is_refused():
    with pytest.raises(InvalidParam):
        run(png(200, 100), "rect=200,0,10,10")


def test_entropy_and_edges_crops_run():
    for mode in ("entropy", "edges"):
        assert size(run(jpeg(200, 100), f"fit=crop&w=50&h=50&crop={mode}")) == (50, 50)


@pytest.mark.parametrize(
    ("query", "dims", "expected"),
    [
        # imgix rotates counter-clockwise
        ("rot=90", (48, 64), (GREEN, WHITE, RED, BLUE)),
        ("rot=180", (64, 48), (WHITE, BLUE, GREEN, RED)),
        ("rot=270", (48, 64), (BLUE, RED, WHITE, GREEN)),
        ("flip=h", (64, 48), (GREEN, RED, WHITE, BLUE)),
        ("flip=v", (64, 48), (BLUE, WHITE, RED, GREEN)),
        ("flip=hv", (64, 48), (WHITE, BLUE, GREEN, RED)),
        ("rot=90&w=24", (24, 32), (GREEN, WHITE, RED, BLUE)),
    ],
)
def test_rotation_and_flips_move_the_quadrants(query, dims, expected):
    rendered = run(png(64, 48), query)
    assert size(rendered) == dims
    assert_corners(rendered.body, expected)


def _oriented_jpeg(orientation: int, width: int = 64, height: int = 48) -> bytes:
    return with_fields(quadrants(width, height), orientation=orientation).jpegsave_buffer(Q=95)


@pytest.mark.parametrize(
    ("orientation", "dims", "expected"),
    [
        (6, (24, 32), (BLUE, RED, WHITE, GREEN)),
        (8, (24, 32), (GREEN, WHITE, RED, BLUE)),
        (3, (32, 24), (WHITE, BLUE, GREEN, RED)),
        (1, (32, 24), (RED, GREEN, BLUE, WHITE)),
    ],
)
def test_exif_orientation_is_applied(orientation, dims, expected):
    data = _oriented_jpeg(orientation)
    assert decode(data).get("orientation") == orientation
    rendered = run(data, ("w=24" if dims[0] < dims[1] else "w=32") + "&fm=png")
    assert size(rendered) == dims
    assert_corners(rendered.body, expected)
    assert not decode(rendered.body).get_typeof("orientation") or decode(rendered.body).get("orientation") == 1


def test_exif_orientation_with_shrink_on_load_and_no_resize():
    data = _oriented_jpeg(6, 320, 240)
    assert size(run(data, "w=30")) == (30, 40)
    assert_corners(run(data, "w=30&fm=png").body, (BLUE, RED, WHITE, GREEN))
    whole = run(data, "fm=png")
    assert size(whole) == (240, 320)
    assert_corners(whole.body, (BLUE, RED, WHITE, GREEN))


def test_orientation_then_rect_uses_displayed_coordinates():
    # Displayed 48x64 with blue top-left: the top-left 24x32 is blue.
    rendered = run(_oriented_jpeg(6), "rect=0,0,24,32&fm=png")
    assert size(rendered) == (24, 32)
    assert close(pixel(rendered.body, 12, 16), BLUE)


# -- formats ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fm", "family"),
    [("jpg", "jpg"), ("pjpg", "jpg"), ("png", "png"), ("webp", "webp"), ("avif", "avif"), ("gif", "gif")],
)
def test_every_output_format_by_magic_bytes(fm, family):
    rendered = run(png(64, 48), f"w=32&fm={fm}")
    assert magic(rendered.body) == family
    assert rendered.format == fm
    assert size(rendered) == (32, 24)
    assert close(pixel(rendered.body, 4, 4), RED)


def test_pjpg_is_progressive_and_jpg_is_not():
    def interlaced(data: bytes) -> bool:
        image = decode(data)
        return bool(image.get_typeof("interlaced") and image.get("interlaced"))

    assert interlaced(run(png(64, 48), "w=32&fm=pjpg").body)
    assert not interlaced(run(png(64, 48), "w=32&fm=jpg").body)


def _alpha_png(width: int = 64, height: int = 48) -> bytes:
    alpha = flat(width // 2, height, (0,)).join(flat(width - width // 2, height, (255,)), "horizontal").extract_band(0)
    return quadrants(width, height).bandjoin(alpha).pngsave_buffer()


@pytest.mark.parametrize(
    ("source", "accepts", "query", "expected"),
    [
        ("jpg", Accepts.AVIF, "auto=format", "avif"),
        ("jpg", Accepts.WEBP, "auto=format", "webp"),
        ("jpg", Accepts.LEGACY, "auto=format", "jpg"),
        ("png", Accepts.LEGACY, "auto=format", "png"),
        ("png", Accepts.AVIF, "auto=format,compress", "avif"),
        ("webp", Accepts.LEGACY, "auto=format", "jpg"),
        ("webp-alpha", Accepts.LEGACY, "auto=format", "png"),
        ("webp", Accepts.LEGACY, "w=10", "webp"),
        ("jpg", Accepts.AVIF, "w=10", "jpg"),
        ("jpg", Accepts.AVIF, "auto=format&fm=png", "png"),
    ],
)
def test_auto_format_negotiation(source, accepts, query, expected):
    data = {
        "jpg": jpeg(64, 48),
        "png": png(64, 48),
        "webp": quadrants(64, 48).webpsave_buffer(),
        "webp-alpha": decode(_alpha_png()).webpsave_buffer(),
    }[source]
    rendered = run(data, query, accepts)
    assert rendered.format == expected
    assert magic(rendered.body) == expected


def test_metadata_is_stripped_from_every_format():
    image = with_fields(quadrants(64, 48), orientation=1)
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "someone")
    image.set_type(pyvips.GValue.blob_type, "xmp-data", b'<x:xmpmeta xmlns:x="adobe:ns:meta/"></x:xmpmeta>')
    data = image.jpegsave_buffer(Q=95)
    assert {"exif-data", "xmp-data"} <= set(decode(data).get_fields())
    for fm in ("jpg", "pjpg", "png", "webp", "avif"):
        fields = set(decode(run(data, f"w=32&fm={fm}").body).get_fields())
        assert not fields & {"exif-data", "xmp-data", "icc-profile-data", "iptc-data"}, (fm, fields)


def test_only_recompressing_serves_the_smaller_source():
    data = quadrants(64, 48).jpegsave_buffer(Q=20, keep="none")
    rendered = run(data, "q=100")
    assert rendered.body == data
    assert (rendered.width, rendered.height, rendered.format) == (64, 48, "jpg")


def test_auto_enhance_is_a_render_even_when_the_source_is_smaller():
    """`auto=enhance` (and `auto=redeye`) change pixels: unlike `format` and `compress`, they do not
    make a request a mere re-encode, so a smaller source is no answer to them."""
    ramp = (pyvips.Image.grey(64, 48) * 60 + 100).cast("uchar")  # a dull ramp, 100 to 160
    image = ramp.bandjoin([ramp, ramp]).copy(interpretation="srgb")
    data = image.jpegsave_buffer(Q=10, keep="none", optimize_coding=True)
    assert run(data, "q=100").body == data  # a re-encode alone: the smaller source is served
    rendered = run(data, "auto=enhance&q=100")
    assert rendered.body != data
    source, enhanced = decode(data), decode(rendered.body)
    assert enhanced.max() - enhanced.min() > source.max() - source.min()  # the levels were stretched


def test_source_with_metadata_is_never_served_as_is():
    data = quadrants(64, 48).jpegsave_buffer(Q=20)  # libvips writes an EXIF block by default
    assert pyvips.Image.new_from_buffer(data, "").get_typeof("exif-data")
    rendered = run(data, "q=100")
    assert rendered.body != data
    assert not pyvips.Image.new_from_buffer(rendered.body, "").get_typeof("exif-data")


def test_display_p3_source_is_converted_not_served_as_is():
    """A P3-tagged source (an iPhone photo) re-encoded smaller than `q=100` would be: the answer is
    still a render, sRGB without the profile, showing the colours the profile meant."""
    data = quadrants(64, 48).icc_transform("p3", input_profile="srgb").jpegsave_buffer(Q=20, keep="icc")
    assert decode(data).get_typeof("icc-profile-data")
    assert not close(pixel(data, 2, 2), RED)  # P3 numbers for sRGB red: only the profile makes them red
    rendered = run(data, "q=100")
    assert rendered.body != data
    image = _assert_8bit_srgb(rendered)
    assert not image.get_typeof("icc-profile-data")
    assert close(pixel(image, 2, 2), RED) and close(pixel(image, 60, 2), GREEN)


def test_cmyk_source_without_a_profile_is_converted_not_served_as_is():
    grain = pyvips.Image.gaussnoise(64, 48, sigma=8)  # so q=100 cannot come out smaller than the source
    data = (quadrants(64, 48) + grain).cast("uchar").copy(interpretation="srgb").colourspace("cmyk")
    data = data.jpegsave_buffer(Q=20, keep="none")
    assert decode(data).interpretation == "cmyk"
    rendered = run(data, "q=100")
    assert rendered.body != data
    image = _assert_8bit_srgb(rendered)
    assert close(pixel(image, 3, 3), pixel(decode(data).colourspace("srgb"), 3, 3))


def test_source_past_the_output_cap_is_never_served_as_is():
    data = quadrants(64, 48).jpegsave_buffer(Q=20)
    rendered = run(data, "q=100", config=replace(defaults().render, max_output_side=32))
    assert size(rendered) == (32, 24)


# -- colour: input spaces and alpha -------------------------------------------------------


def _assert_8bit_srgb(rendered: Rendered, bands: int = 3) -> pyvips.Image:
    image = decode(rendered.body)
    assert image.format == "uchar"
    assert image.interpretation == "srgb"
    assert image.bands == bands
    return image


def test_16_bit_png_comes_out_8_bit():
    data = (
        (quadrants(64, 48).cast("ushort") * 257).cast("ushort").copy(interpretation="rgb16").pngsave_buffer(bitdepth=16)
    )
    assert decode(data).format == "ushort"
    for query in ("w=32&fm=png", "fm=png", "w=32&fm=jpg"):
        image = _assert_8bit_srgb(run(data, query))
        assert close(pixel(image, 2, 2), RED) and close(pixel(image, image.width - 3, image.height - 3), WHITE)


def test_16_bit_png_with_alpha_comes_out_8_bit_with_alpha():
    rgba = quadrants(64, 48).bandjoin(255).cast("ushort") * 257
    data = rgba.cast("ushort").copy(interpretation="rgb16").pngsave_buffer(bitdepth=16)
    image = _assert_8bit_srgb(run(data, "w=32&fm=png"), bands=4)
    assert close(pixel(image, 2, 2), (*RED, 255))


def test_grey_png_comes_out_srgb():
    grey = flat(64, 48, (100, 100, 100)).colourspace("b-w")
    assert decode(grey.pngsave_buffer()).bands == 1
    for data in (
        grey.pngsave_buffer(),
        (grey.cast("ushort") * 257).cast("ushort").copy(interpretation="grey16").pngsave_buffer(bitdepth=16),
    ):
        image = _assert_8bit_srgb(run(data, "w=32&fm=png"))
        assert close(pixel(image, 5, 5), (100, 100, 100), 3)


@pytest.mark.parametrize("keep", ["icc", "none"])
def test_cmyk_jpeg_comes_out_srgb(keep):
    data = quadrants(64, 48).colourspace("cmyk").jpegsave_buffer(Q=95, keep=keep)
    assert decode(data).interpretation == "cmyk"
    image = _assert_8bit_srgb(run(data, "w=32&fm=png"))
    r, g, b = pixel(image, 3, 3)
    assert r > 180 and g < 80 and b < 80
    assert close(pixel(image, 29, 21), WHITE, 30)


def test_alpha_is_flattened_onto_white_for_jpeg():
    image = _assert_8bit_srgb(run(_alpha_png(), "fm=jpg"))
    assert close(pixel(image, 5, 5), WHITE)  # transparent half
    assert close(pixel(image, 58, 5), GREEN)  # opaque half


def test_alpha_is_flattened_onto_bg_for_jpeg():
    image = _assert_8bit_srgb(run(_alpha_png(), "fm=jpg&bg=00f"))
    assert close(pixel(image, 5, 5), BLUE)
    assert close(pixel(image, 58, 5), GREEN)


def test_alpha_is_kept_for_png_and_bg_fills_it():
    kept = _assert_8bit_srgb(run(_alpha_png(), "fm=png"), bands=4)
    assert pixel(kept, 5, 5)[3] == 0 and pixel(kept, 58, 5) == (*GREEN, 255)
    filled = decode(run(_alpha_png(), "fm=png&bg=f00").body)
    assert close(pixel(filled, 5, 5), (*RED, 255))


# -- canvases: fill, clamp, pad, trim -----------------------------------------------------


def test_fill_solid_colour():
    rendered = run(png(64, 48), "fit=fill&w=100&h=100&fill=solid&fill-color=00ff00&fm=jpg")
    assert size(rendered) == (100, 100)
    assert close(pixel(rendered.body, 50, 3), GREEN) and close(pixel(rendered.body, 50, 96), GREEN)
    assert close(pixel(rendered.body, 20, 25), RED)


def test_fill_colour_with_alpha_on_png():
    rendered = run(png(64, 48), "fit=fill&w=100&h=100&fill=solid&fill-color=8000ff00&fm=png")
    assert pixel(rendered.body, 50, 3) == (0, 255, 0, 128)


def test_fill_defaults_to_transparent_or_white_and_bg_overrides():
    assert pixel(run(png(64, 48), "fit=fill&w=100&h=100&fm=png").body, 50, 3)[3] == 0
    assert close(pixel(run(png(64, 48), "fit=fill&w=100&h=100&fm=jpg").body, 50, 3), WHITE)
    assert close(pixel(run(png(64, 48), "fit=fillmax&w=100&h=100&bg=00f&fm=jpg").body, 50, 3), BLUE)


def test_fillmax_keeps_the_image_size_on_its_canvas():
    rendered = run(png(64, 48), "fit=fillmax&w=200&h=200&fill-color=f0f&fm=png")
    assert size(rendered) == (200, 200)
    assert close(pixel(rendered.body, 5, 5), MAGENTA)
    assert close(pixel(rendered.body, 70, 78), RED)  # image at (68, 76)-(132, 124)
    assert close(pixel(rendered.body, 130, 122), WHITE)
    assert close(pixel(rendered.body, 135, 100), MAGENTA)


def test_fill_blur_fills_the_canvas_with_the_image():
    rendered = run(png(64, 48), "fit=fill&w=100&h=100&fill=blur&fm=png")
    assert size(rendered) == (100, 100)
    image = decode(rendered.body)
    assert image.bands == 3
    top = pixel(image, 10, 3)
    assert top[0] > 150 and top[2] < 150  # blurred red, not a flat fill colour


def test_clamp_repeats_the_edge_pixels():
    rendered = run(png(64, 48), "fit=clamp&w=100&h=100&fm=png")
    assert size(rendered) == (100, 100)
    for (x, y), colour in {(10, 2): RED, (90, 2): GREEN, (10, 97): BLUE, (90, 97): WHITE}.items():
        assert close(pixel(rendered.body, x, y), colour), (x, y)


def test_clamp_with_pad_repeats_edges_inside_the_padding():
    rendered = run(png(64, 48), "fit=clamp&w=110&h=110&pad=5&bg=000&fm=png")
    assert size(rendered) == (110, 110)
    assert close(pixel(rendered.body, 1, 1), BLACK)
    assert close(pixel(rendered.body, 12, 8), RED)
    assert close(pixel(rendered.body, 100, 103), WHITE)
    assert close(pixel(rendered.body, 108, 108), BLACK)


def test_pad_borders_in_bg():
    rendered = run(png(64, 48), "pad=10&bg=f0f&fm=png")
    assert size(rendered) == (84, 68)
    assert close(pixel(rendered.body, 2, 2), MAGENTA) and close(pixel(rendered.body, 81, 65), MAGENTA)
    assert close(pixel(rendered.body, 12, 12), RED) and close(pixel(rendered.body, 71, 55), WHITE)


def test_pad_defaults_to_transparent_or_white():
    assert pixel(run(png(64, 48), "pad=4&fm=png").body, 1, 1)[3] == 0
    assert close(pixel(run(png(64, 48), "pad=4&fm=jpg").body, 1, 1), WHITE)


def test_pad_with_fill_uses_fill_colour_inside_and_bg_outside():
    rendered = run(png(64, 48), "fit=fill&w=100&h=100&pad=5&fill-color=0f0&bg=00f&fm=png")
    assert size(rendered) == (100, 100)
    assert close(pixel(rendered.body, 2, 50), BLUE)
    assert close(pixel(rendered.body, 50, 8), GREEN)


def _framed(inner: tuple[int, int] = (40, 30), border: int = 10) -> pyvips.Image:
    w, h = inner
    return flat(w, h, BLUE).embed(
        border, border, w + 2 * border, h + 2 * border, extend="background", background=list(WHITE)
    )


def test_trim_removes_a_uniform_border():
    assert size(run(_framed().pngsave_buffer(), "trim=auto")) == (40, 30)
    assert size(run(_framed().pngsave_buffer(), "trim=color&trim-color=fff")) == (40, 30)
    trimmed = run(_framed().jpegsave_buffer(Q=95), "trim=auto&fm=png")
    assert abs(trimmed.width - 40) <= 2 and abs(trimmed.height - 30) <= 2
    assert close(pixel(trimmed.body, 2, 2), BLUE)


class _Recording(RenderGuard):
    """Keeps every image the pipeline registers, to tell at which scale the source was decoded."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[pyvips.Image] = []

    def track(self, image: pyvips.Image) -> pyvips.Image:
        self.images.append(image)
        return super().track(image)


def _full_decode_trim(data: bytes, width: int) -> pyvips.Image:
    """The reference: libvips' full-size decode, its own trim box, resized to `width`."""
    image = pyvips.Image.new_from_buffer(data, "")
    left, top, w, h = image.find_trim(threshold=10, background=image.getpoint(0, 0))
    trimmed = image.crop(left, top, w, h)
    return trimmed.resize(width / trimmed.width, vscale=round(width * h / w) / trimmed.height)


@pytest.mark.parametrize(
    ("inner", "border", "width"),
    [((1600, 1200), (400, 300), 200), ((120, 90), (1140, 855), 120)],
    ids=["wide-subject-shrunk-decode", "small-subject-decoded-again"],
)
def test_trim_on_a_shrunk_jpeg_decode_finds_the_full_decodes_box(inner, border, width):
    """trim no longer forces a full-size decode: the box found at 1/8 matches the full decode's
    (to a pixel of the output), and a subject too small for the shrunk decode is decoded again."""
    subject = quadrants(*inner)
    framed = subject.embed(*border, inner[0] + 2 * border[0], inner[1] + 2 * border[1], extend="white")
    data = framed.jpegsave_buffer(Q=95)
    info = probe(data, CONFIG)
    assert jpeg_shrink(info, spec_of(f"trim=auto&w={width}"), CONFIG) == 8
    guard = _Recording()
    rendered = run(data, f"trim=auto&w={width}&fm=png", guard=guard)
    decoded_widths = [image.width for image in guard.images]
    assert decoded_widths[0] == framed.width // 8  # first decoded at 1/8, never at full size...
    assert (framed.width in decoded_widths) == (width == inner[0])  # ...unless the subject needs it
    reference = _full_decode_trim(data, width)
    assert abs(rendered.width - reference.width) <= 1 and abs(rendered.height - reference.height) <= 1
    assert rendered.width == width and abs(rendered.height - round(width * inner[1] / inner[0])) <= 1
    w, h = min(rendered.width, reference.width) - 4, min(rendered.height, reference.height) - 4
    ours, theirs = decode(rendered.body).crop(2, 2, w, h), reference.crop(2, 2, w, h)
    assert (ours - theirs).abs().avg() < 4.0  # mean absolute difference, 0-255 scale, edges left out


def test_trim_then_resize():
    assert size(run(_framed().pngsave_buffer(), "trim=auto&w=20")) == (20, 15)


def test_trim_of_a_flat_image_keeps_it():
    assert size(run(flat(30, 20).pngsave_buffer(), "trim=auto")) == (30, 20)


# -- watermark ----------------------------------------------------------------------------

MARK = flat(20, 10, BLACK).pngsave_buffer()


@pytest.mark.parametrize(
    ("query", "black", "untouched"),
    [
        ("", [(190, 90), (176, 86)], {(10, 8): RED, (172, 90): WHITE, (190, 80): WHITE}),
        ("mark-align=top,left", [(10, 8), (6, 6)], {(190, 90): WHITE, (30, 8): RED}),
        ("mark-align=top,right", [(190, 8)], {(10, 8): RED, (190, 90): WHITE}),
        ("mark-align=bottom,left", [(10, 90)], {(190, 90): WHITE}),
        ("mark-align=middle,center&mark-pad=0", [(100, 50), (91, 46)], {(190, 90): WHITE}),
        ("mark-pad=0", [(199, 99), (181, 91)], {(179, 89): WHITE}),
        ("mark-scale=50", [(100, 50), (96, 46), (194, 94)], {(94, 60): BLUE, (190, 40): GREEN}),
    ],
)
def test_watermark_lands_where_mark_align_says(query, black, untouched):
    rendered = run(png(200, 100), f"mark=m.png&fm=png&{query}", mark=MARK)
    assert size(rendered) == (200, 100)
    for x, y in black:
        assert close(pixel(rendered.body, x, y), BLACK), (x, y)
    for (x, y), colour in untouched.items():
        assert close(pixel(rendered.body, x, y), colour), (x, y)


def test_watermark_alpha_half_blends():
    rendered = run(png(200, 100), "mark=m.png&mark-alpha=50&fm=png", mark=MARK)
    assert close(pixel(rendered.body, 190, 90), (128, 128, 128), 6)
    invisible = run(png(200, 100), "mark=m.png&mark-alpha=0&fm=png", mark=MARK)
    assert close(pixel(invisible.body, 190, 90), WHITE, 2)


def test_watermark_scale_is_a_share_of_the_base_width():
    # 25% of a 200 px base: 50x25, bottom-right inside a 5 px margin -> x 145..195, y 70..95
    rendered = run(png(200, 100), "mark=m.png&mark-scale=25&fm=png", mark=MARK)
    assert close(pixel(rendered.body, 146, 71), BLACK) and close(pixel(rendered.body, 194, 94), BLACK)
    assert close(pixel(rendered.body, 143, 80), WHITE) and close(pixel(rendered.body, 170, 68), WHITE)


def test_watermark_is_drawn_after_resizing_and_on_jpeg():
    rendered = run(jpeg(400, 200), "w=200&mark=m.png", mark=MARK)
    assert size(rendered) == (200, 100)
    assert close(pixel(rendered.body, 190, 90), BLACK, 30)
    assert close(pixel(rendered.body, 150, 90), WHITE, 30)


def test_watermark_larger_than_the_image_is_shrunk_inside_it():
    rendered = run(png(40, 20), "mark=m.png&mark-scale=100&fm=png", mark=flat(200, 100, BLACK).pngsave_buffer())
    assert size(rendered) == (40, 20)
    assert close(pixel(rendered.body, 20, 10), BLACK)
    assert close(pixel(rendered.body, 1, 1), RED)


def test_watermark_transparency_is_respected():
    mark = flat(20, 10, BLACK).bandjoin(0).pngsave_buffer()
    rendered = run(png(200, 100), "mark=m.png&fm=png", mark=mark)
    assert close(pixel(rendered.body, 190, 90), WHITE)


# -- adjustments --------------------------------------------------------------------------


def _one(colour: tuple[int, int, int], query: str) -> tuple[int, ...]:
    return pixel(run(flat(16, 16, colour).pngsave_buffer(), query + "&fm=png").body, 8, 8)


def test_invert():
    assert close(_one(RED, "invert=1"), CYAN, 2)
    assert close(_one((10, 100, 200), "invert=true"), (245, 155, 55), 2)


def test_brightness():
    assert close(_one((100, 100, 100), "bri=100"), WHITE, 2)
    assert close(_one((100, 100, 100), "bri=-100"), BLACK, 2)
    assert _one((100, 100, 100), "bri=20")[0] > 120
    assert _one((100, 100, 100), "bri=-20")[0] < 80


def test_contrast():
    assert _one((200, 200, 200), "con=50")[0] > 230
    assert _one((60, 60, 60), "con=50")[0] < 40
    assert close(_one((200, 200, 200), "con=-100"), (128, 128, 128), 2)


def test_saturation():
    r, g, b = _one(RED, "sat=-100")
    assert max(r, g, b) - min(r, g, b) <= 3
    before = (150, 110, 100)
    after = _one(before, "sat=80")
    assert after[0] - after[2] > before[0] - before[2]


def test_gamma_moves_mid_grey():
    assert _one((128, 128, 128), "gam=50")[0] > 150
    assert _one((128, 128, 128), "gam=-50")[0] < 100
    assert close(_one(WHITE, "gam=50"), WHITE, 1) and close(_one(BLACK, "gam=50"), BLACK, 1)


def test_hue_rotates_the_colour():
    r, g, b = _one(RED, "hue=180")
    assert b > r and g > r
    r, g, b = _one(RED, "hue=120")
    assert g > r and g > b


def test_sepia_warms_grey():
    r, g, b = _one((128, 128, 128), "sepia=100")
    assert r > g > b


def test_monochrome_tints():
    r, g, b = _one(BLUE, "monochrome=ff0000")
    assert r > 10 and g < 5 and b < 5
    r, g, b = _one(GREEN, "monochrome=800000ff")
    assert b > r and g < 200


def test_adjustments_keep_alpha():
    image = decode(run(_alpha_png(), "invert=1&bri=10&sat=-50&fm=png").body)
    assert image.bands == 4
    assert pixel(image, 5, 5)[3] == 0 and pixel(image, 58, 5)[3] == 255


def test_blur_softens_edges_and_sharp_runs():
    sharp = decode(run(png(64, 48), "fm=png").body)
    blurred = decode(run(png(64, 48), "blur=50&fm=png").body)
    assert pixel(sharp, 31, 10) == RED
    assert pixel(blurred, 31, 10)[1] > 40  # red bleeds into green across the edge
    assert close(pixel(blurred, 5, 10), RED, 10)
    for query in ("blur=2000", "sharp=100", "sharp=20&blur=5", "blur=10&w=20"):
        image = _assert_8bit_srgb(run(png(64, 48), query + "&fm=png"))
        assert (image.width, image.height) == ((20, 15) if "w=20" in query else (64, 48))


# -- fm=json ------------------------------------------------------------------------------


def test_describe():
    mostly_red = flat(60, 40, (230, 20, 30)).insert(flat(10, 10, BLUE), 0, 0).pngsave_buffer()
    body = json.loads(describe(mostly_red, CONFIG, RenderGuard()))
    assert {k: body[k] for k in ("width", "height", "format", "bytes", "has_alpha")} == {
        "width": 60,
        "height": 40,
        "format": "png",
        "bytes": len(mostly_red),
        "has_alpha": False,
    }
    colour = body["dominant_color"]
    assert colour.startswith("#") and len(colour) == 7
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    assert r > 180 and g < 64 and b < 64


def test_describe_reports_displayed_size_alpha_and_frames():
    assert json.loads(describe(_oriented_jpeg(6), CONFIG, RenderGuard()))[("width")] == 48
    assert json.loads(describe(_alpha_png(), CONFIG, RenderGuard()))["has_alpha"] is True
    assert json.loads(describe(animated_gif(), CONFIG, RenderGuard()))["frames"] == 5
    grey = flat(20, 20, (90, 90, 90)).colourspace("b-w").pngsave_buffer()
    assert json.loads(describe(grey, CONFIG, RenderGuard()))["dominant_color"] == "#505050"


def test_describe_honours_limits_and_guard():
    with pytest.raises(ImageTooLarge):
        describe(png_header_only(64250, 64250), CONFIG, RenderGuard())
    guard = RenderGuard()
    guard.kill()
    with pytest.raises(RenderTimeout):
        describe(png(64, 48), CONFIG, guard)


# -- JPEG shrink-on-load ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "factor"),
    [
        ("w=100", 8),
        ("w=101", 4),
        ("w=200", 4),
        ("w=201", 2),
        ("w=400", 2),
        ("w=401", 1),
        ("w=800", 1),
        ("w=1600", 1),
        ("", 1),
        ("w=0.1", 8),
        ("w=100&dpr=2", 4),
        ("h=75", 8),
        ("fit=crop&w=75&h=75", 8),
        ("fit=crop&w=100&h=100", 4),
        ("fit=scale&w=100&h=300", 2),
        ("fit=fill&w=100&h=100", 8),
        ("w=110&pad=5", 8),
        ("rect=0,0,400,300&w=100", 4),
        ("rot=90&w=75", 8),
        ("trim=auto&w=100", 8),
        ("fit=crop&w=100&h=100&crop=focalpoint&fp-z=2", 2),
    ],
)
def test_jpeg_shrink_factor(query, factor):
    info = probe(jpeg(800, 600), CONFIG)
    assert jpeg_shrink(info, spec_of(query), CONFIG) == factor


# -- failures -----------------------------------------------------------------------------


class KillAfter(RenderGuard):
    """Flips the kill switch when the pipeline registers its n-th image, as a timeout would."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.calls = 0

    def track(self, image: pyvips.Image) -> pyvips.Image:
        self.calls += 1
        image = super().track(image)
        if self.calls == self.n:
            self.kill()
        return image


def test_a_guard_killed_before_rendering_raises_timeout():
    guard = RenderGuard()
    guard.kill()
    with pytest.raises(RenderTimeout):
        run(jpeg(64, 48), "w=32", guard=guard)


@pytest.mark.parametrize("query", ["w=32&fm=webp&blur=10", "fit=fill&w=50&h=50&fill=blur&fm=png&mark=m.png"])
def test_a_guard_killed_at_any_point_raises_timeout_not_corrupt(query):
    completed = False
    for n in range(1, 40):
        guard = KillAfter(n)
        try:
            run(jpeg(64, 48), query, guard=guard, mark=MARK)
        except RenderTimeout:
            continue
        completed = True
        assert guard.calls < n  # finished only because the kill came after the last image
        break
    assert completed


def test_a_guard_killed_from_another_thread_stops_the_render():
    import threading

    guard = RenderGuard()
    data = png(1200, 900)
    timer = threading.Timer(0.01, guard.kill)
    timer.start()
    started = time.perf_counter()
    try:
        with pytest.raises(RenderTimeout):
            for _ in range(50):  # until the timer fires; each render alone is fast
                run(data, "blur=400&sharp=50&fm=png", guard=guard)
    finally:
        timer.cancel()
    assert time.perf_counter() - started < 10


def test_truncated_jpeg_is_corrupt():
    data = jpeg(400, 300)
    for cut in (0.5, 0.8, 0.98):
        with pytest.raises(CorruptImage):
            run(data[: int(len(data) * cut)], "w=100")
    with pytest.raises(CorruptImage):
        run(data[:20], "w=100")


def test_truncated_png_is_corrupt():
    data = png(400, 300)
    with pytest.raises(CorruptImage):
        run(data[: len(data) - 30], "w=100&fm=png")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"definitely not an image" * 10,
        bytes(range(256)) * 4,
        b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>',
        b"II*\x00" + bytes(60),
        b"%PDF-1.4\n",
        b"BM" + bytes(60),
    ],
    ids=["empty", "text", "bytes", "svg", "tiff", "pdf", "bmp"],
)
def test_not_an_image_we_serve(data):
    with pytest.raises(UnsupportedMedia):
        run(data, "w=10")


def test_real_tiff_is_refused():
    with pytest.raises(UnsupportedMedia):
        run(quadrants(8, 8).tiffsave_buffer(), "w=4")


def test_pixel_bomb_header_is_refused_fast():
    bomb = png_header_only(64250, 64250)
    assert len(bomb) < 400
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge):
        run(bomb, "w=100")
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("dims", [(16385, 10), (10, 16385), (8000, 7000)])
def test_source_limits(dims):
    with pytest.raises(ImageTooLarge):
        run(png_header_only(*dims), "w=10")


def test_a_wide_real_image_is_refused():
    with pytest.raises(ImageTooLarge):
        run(flat(16385, 10).pngsave_buffer(compression=9), "w=32")


def test_limits_come_from_the_config():
    with pytest.raises(ImageTooLarge):
        run(png(64, 48), "w=10", config=replace(defaults().render, max_source_side=63))
    with pytest.raises(ImageTooLarge):
        run(png(64, 48), "w=10", config=replace(defaults().render, max_source_pixels=64 * 48 - 1))


def test_harden_blocks_svg_and_tiff_loaders():
    harden()  # idempotent
    for data in (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>',
        pyvips.Image.black(4, 4).tiffsave_buffer(),
    ):
        with pytest.raises(pyvips.Error):
            pyvips.Image.new_from_buffer(data, "").avg()
    for data in (png(8, 8), jpeg(8, 8), quadrants(8, 8).webpsave_buffer(), quadrants(8, 8).gifsave_buffer()):
        assert pyvips.Image.new_from_buffer(data, "").avg() > 0


# -- animation ----------------------------------------------------------------------------

ANIMATED = replace(defaults().render, animation=True)


def _frames(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "", n=-1)


@pytest.mark.parametrize("fm", ["gif", "webp"])
def test_animation_keeps_every_frame_resized(fm):
    rendered = run(animated_gif(), f"w=20&fm={fm}", config=ANIMATED)
    assert magic(rendered.body) == fm
    assert (rendered.width, rendered.height) == (20, 15)
    frames = _frames(rendered.body)
    assert frames.get("n-pages") == 5
    assert frames.get("page-height") == 15
    assert (frames.width, frames.height) == (20, 75)
    for index, colour in enumerate([RED, GREEN, BLUE, WHITE, (255, 255, 0)]):
        assert close(pixel(frames, 10, index * 15 + 7), colour), index
    assert frames.get("delay") == [80] * 5


def test_animation_is_the_default_output_for_an_animated_gif():
    rendered = run(animated_gif(), "w=20", config=ANIMATED)
    assert rendered.format == "gif"
    assert _frames(rendered.body).get("n-pages") == 5


def test_animation_through_crop_and_canvas_keeps_frames_aligned():
    rendered = run(animated_gif(), "fit=fill&w=30&h=30&fill-color=000&fm=gif", config=ANIMATED)
    frames = _frames(rendered.body)
    assert (frames.get("n-pages"), frames.get("page-height"), frames.width) == (5, 30, 30)
    assert close(pixel(frames, 15, 30 + 15), GREEN) and close(pixel(frames, 15, 30 + 1), BLACK)


def test_without_animation_the_output_is_a_still():
    for query in ("w=20&fm=gif", "w=20&fm=webp", "w=20"):
        frames = _frames(run(animated_gif(), query).body)
        assert (frames.get("n-pages") if frames.get_typeof("n-pages") else 1) == 1
        assert (frames.width, frames.height) == (20, 15)
        assert close(pixel(frames, 10, 7), RED)


def test_animation_to_a_still_format_takes_the_first_frame():
    rendered = run(animated_gif(), "w=20&fm=png", config=ANIMATED)
    assert size(rendered) == (20, 15)
    assert close(pixel(rendered.body, 10, 7), RED)


def test_too_many_frames():
    with pytest.raises(TooManyFrames):
        run(animated_gif(5), "w=20&fm=gif", config=replace(defaults().render, animation=True, max_frames=3))
    with pytest.raises(TooManyFrames):
        run(
            animated_gif(5), "w=20", config=replace(defaults().render, animation=True, max_animation_pixels=40 * 30 * 4)
        )


def test_frame_limits_do_not_apply_to_a_still():
    rendered = run(animated_gif(5), "w=20&fm=gif", config=replace(defaults().render, animation=False, max_frames=3))
    assert size(rendered) == (20, 15)


def test_animation_trim_uses_one_box_for_every_frame():
    boxed = [flat(20, 10, BLUE).embed(b, b, 40, 30, extend="background", background=list(WHITE)) for b in (2, 5, 8)]
    strip = with_fields(pyvips.Image.arrayjoin(boxed, across=1), page_height=30)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [50] * 3)
    rendered = run(strip.gifsave_buffer(), "trim=auto&fm=gif", config=ANIMATED)
    frames = _frames(rendered.body)
    assert (rendered.width, rendered.height) == (20, 10)
    assert (frames.get("n-pages"), frames.get("page-height"), frames.height) == (3, 10, 30)


# -- formats: sniffing and negotiation ----------------------------------------------------


@pytest.mark.parametrize("fm", ["jpg", "png", "webp", "avif", "gif"])
def test_sniff_knows_every_output_it_can_read_back(fm):
    data = run(png(16, 12), f"fm={fm}").body
    assert sniff(data) == fm
    assert probe(data, CONFIG).format == fm


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("image/avif,image/webp,*/*", Accepts.AVIF),
        ("image/webp,*/*;q=0.8", Accepts.WEBP),
        ("image/avif;q=0,image/webp", Accepts.WEBP),
        ("IMAGE/AVIF", Accepts.AVIF),
        ("image/avif;q=0.0, image/webp;q=0", Accepts.LEGACY),
        ("*/*", Accepts.LEGACY),
        ("image/*", Accepts.LEGACY),
        ("", Accepts.LEGACY),
        ("garbage;;;,,,", Accepts.LEGACY),
        ("text/html," * 2000 + "image/webp", Accepts.LEGACY),
    ],
    ids=range(10),
)
def test_accept_negotiation(accept, expected):
    assert negotiate(accept) is expected


@pytest.mark.parametrize("dims", [(1, 1), (2, 5), (4000, 2)])
def test_trim_of_images_smaller_than_its_window_keeps_them(dims):
    assert size(run(flat(*dims).pngsave_buffer(), "trim=auto")) == dims


@pytest.mark.parametrize(
    "query",
    [
        "w=1",
        "h=1",
        "fit=crop&w=1&h=1",
        "fit=scale&w=1&h=300",
        "fit=fill&w=1&h=1",
        "fit=clamp&w=3&h=500",
        "w=1&fm=avif",
        "w=1&fm=gif",
        "blur=2000&w=3",
        "pad=2048&w=1",
        "fit=fill&fill=blur&w=5&h=900",
    ],
)
def test_extreme_sizes_render(query):
    for data in (jpeg(800, 600), flat(4000, 3).pngsave_buffer(), flat(1, 1).pngsave_buffer()):
        rendered = run(data, query)
        assert min(size(rendered)) >= 1


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize("source", [lambda: jpeg(256, 256), lambda: png(256, 256)], ids=["jpg", "png"])
def test_truncated_sources_are_corrupt_in_describe_and_as_a_mark(source):
    with pytest.raises(CorruptImage):
        describe(_cut(source()), CONFIG, RenderGuard())
    with pytest.raises(CorruptImage):
        run(png(64, 48), "mark=cut&fm=png", mark=_cut(source()))
