"""The Pillow paths (origin/render/pillow.py) give libvips' own result: the same pixels for a
shrunk JPEG decode, the same bytes for a WebP, and whole renders byte for byte the same as with
the paths turned off. Sources are textured (noise over quadrants), not flat colours, so a
resampling or rounding difference would show."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
import pyvips

from origin.errors import CorruptImage, RenderTimeout
from origin.formats import Accepts
from origin.params import parse_query
from origin.render import RenderGuard, harden, pillow, render
from origin.settings import defaults
from tests.images import max_difference, textured

CONFIG = defaults().render
LIMITS = defaults().output


@pytest.fixture(scope="module", autouse=True)
def hardened() -> None:
    harden()


def libvips_decode(data: bytes, shrink: int) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "", shrink=shrink, fail_on="truncated")


def header(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


@pytest.mark.parametrize("interlace", [False, True], ids=["baseline", "progressive"])
@pytest.mark.parametrize("subsample", ["on", "off"], ids=["420", "444"])
@pytest.mark.parametrize("shrink", [2, 4, 8])
@pytest.mark.parametrize("size", [(803, 611), (640, 480)], ids=["partial-blocks", "whole-blocks"])
def test_shrunk_jpeg_decode_is_libvips_decode(interlace, subsample, shrink, size):
    """Same size (libvips drops libjpeg's partial last block: cropped here), same pixels exactly,
    same metadata fields."""
    data = textured(*size).jpegsave_buffer(Q=90, interlace=interlace, subsample_mode=subsample)
    ours = pillow.decode_jpeg(data, header(data), shrink, RenderGuard())
    theirs = libvips_decode(data, shrink)
    assert ours is not None
    assert max_difference(ours, theirs) == 0
    assert ours.interpretation == theirs.interpretation == "srgb"
    assert (ours.xres, ours.yres) == (theirs.xres, theirs.yres)


def test_grey_jpeg_decodes_to_one_band_as_libvips():
    data = textured(400, 300, bands=1).jpegsave_buffer(Q=90)
    ours = pillow.decode_jpeg(data, header(data), 4, RenderGuard())
    assert ours is not None and ours.bands == 1 and ours.interpretation == "b-w"
    assert max_difference(ours, libvips_decode(data, 4)) == 0


def test_metadata_is_carried_over():
    """Orientation, the ICC profile and EXIF reach the pipeline as they would from libvips."""
    image = textured(400, 300).icc_transform("p3", input_profile="srgb").copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    data = image.jpegsave_buffer(Q=90, keep="all")
    ours = pillow.decode_jpeg(data, header(data), 2, RenderGuard())
    theirs = libvips_decode(data, 2)
    assert ours is not None
    for name in ("orientation", "icc-profile-data", "exif-data"):
        assert theirs.get_typeof(name), name
        assert ours.get(name) == theirs.get(name), name


@pytest.mark.parametrize("shrink", [1, 3])
def test_no_pillow_decode_at_full_size_or_odd_shrinks(shrink):
    data = textured(400, 300).jpegsave_buffer(Q=90)
    assert pillow.decode_jpeg(data, header(data), shrink, RenderGuard()) is None


def test_cmyk_jpeg_is_left_to_libvips():
    data = textured(400, 300).colourspace("cmyk").jpegsave_buffer(Q=90)
    assert header(data).bands == 4
    assert pillow.decode_jpeg(data, header(data), 4, RenderGuard()) is None


def test_a_truncated_jpeg_is_left_to_libvips_which_refuses_it():
    data = textured(800, 600).jpegsave_buffer(Q=90, interlace=True)
    cut = data[: len(data) // 2]
    assert pillow.decode_jpeg(cut, header(cut), 4, RenderGuard()) is None
    with pytest.raises(CorruptImage):
        render(cut, parse_query([("w", "100")], LIMITS), Accepts.LEGACY, CONFIG, None, RenderGuard())


def test_a_killed_render_stops_the_decode():
    data = textured(800, 600).jpegsave_buffer(Q=90, interlace=True)
    guard = RenderGuard()
    guard.kill()
    with pytest.raises(RenderTimeout):
        pillow.decode_jpeg(data, header(data), 4, guard)


@pytest.mark.parametrize("bands", [3, 4])
@pytest.mark.parametrize(("quality", "effort"), [(80, 4), (40, 0), (95, 6)])
def test_webp_is_libvips_webp_byte_for_byte(bands, quality, effort):
    image = textured(333, 250, bands=bands)
    assert pillow.can_encode_webp(image)
    assert pillow.encode_webp(image, quality, effort) == image.webpsave_buffer(Q=quality, effort=effort, keep="none")


def test_large_or_unusual_images_are_encoded_by_libvips():
    side = int(pillow.WEBP_MAX_PIXELS**0.5) + 1
    assert not pillow.can_encode_webp(pyvips.Image.black(side, side, bands=3).copy(interpretation="srgb"))
    assert not pillow.can_encode_webp(textured(64, 48).cast("ushort"))
    assert not pillow.can_encode_webp(textured(64, 48, bands=1))


def _without_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pillow, "decode_jpeg", lambda *args: None)
    monkeypatch.setattr(pillow, "can_encode_webp", lambda image: False)


def _sources() -> dict[str, bytes]:
    oriented = textured(900, 700).copy()
    oriented.set_type(pyvips.GValue.gint_type, "orientation", 8)
    sixteen = (textured(300, 200).cast("ushort") * 256).copy(interpretation="rgb16")
    return {
        "progressive": textured(1203, 901).jpegsave_buffer(Q=85, interlace=True),
        "baseline-444": textured(1000, 750).jpegsave_buffer(Q=85, subsample_mode="off"),
        "oriented": oriented.jpegsave_buffer(Q=85, keep="exif"),
        "p3": textured(1000, 750).icc_transform("p3", input_profile="srgb").jpegsave_buffer(Q=85, keep="icc"),
        "cmyk": textured(1000, 750).colourspace("cmyk").jpegsave_buffer(Q=85),
        "grey": textured(1000, 750, bands=1).jpegsave_buffer(Q=85),
        "png-alpha": textured(700, 500, bands=4).pngsave_buffer(),
        "png-16bit": sixteen.pngsave_buffer(),
    }


SOURCES = _sources()
QUERIES = (
    "w=200&fm=webp&q=80",
    "w=150&fm=jpg",
    "w=300&h=120&fit=crop&fm=webp",
    "w=120&fm=png",
    "w=250&rot=90&fm=webp",
    "w=200&trim=auto&fm=webp",
    "w=200&fm=webp&cs=srgb",
    "w=200&fm=webp&lossless=1",
)


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("name", list(SOURCES))
def test_renders_are_the_same_bytes_with_and_without_pillow(name, query, monkeypatch):
    data, spec = SOURCES[name], parse_query(parse_qsl(query), LIMITS)
    fast = render(data, spec, Accepts.LEGACY, CONFIG, None, RenderGuard())
    _without_pillow(monkeypatch)
    slow = render(data, spec, Accepts.LEGACY, CONFIG, None, RenderGuard())
    assert (fast.format, fast.width, fast.height) == (slow.format, slow.width, slow.height)
    assert fast.body == slow.body


def test_a_shrunk_jpeg_render_takes_both_paths(monkeypatch):
    """The comparison above is not vacuous: a 1/4 decode and a small WebP go through Pillow."""
    calls: list[str] = []
    decode, encode = pillow.decode_jpeg, pillow.encode_webp
    monkeypatch.setattr(pillow, "decode_jpeg", lambda *args: calls.append("decode") or decode(*args))
    monkeypatch.setattr(pillow, "encode_webp", lambda *args: calls.append("encode") or encode(*args))
    render(
        SOURCES["progressive"],
        parse_query([("w", "200"), ("fm", "webp")], LIMITS),
        Accepts.LEGACY,
        CONFIG,
        None,
        RenderGuard(),
    )
    assert calls == ["decode", "encode"]
