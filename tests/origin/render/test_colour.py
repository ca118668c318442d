"""ICC-tagged RGB to sRGB with a kept transform (origin/render/colour.py) gives libvips' own
pixels, builds one transform per profile, keeps a bounded number, and leaves every case it
does not cover (16-bit, CMYK, a profile that does not fit, too large) to libvips."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
import pyvips

from origin.formats import Accepts
from origin.params import parse_query
from origin.render import RenderGuard, colour, harden, render
from origin.settings import defaults
from tests.images import max_difference, textured

CONFIG = defaults().render
LIMITS = defaults().output


@pytest.fixture(scope="module", autouse=True)
def hardened() -> None:
    harden()


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    colour._transform.cache_clear()


def p3(image: pyvips.Image) -> pyvips.Image:
    """`image`'s sRGB colours as Display P3 numbers, tagged with libvips' P3 profile."""
    return image.icc_transform("p3", input_profile="srgb").copy(interpretation="srgb")


def libvips_srgb(image: pyvips.Image) -> pyvips.Image:
    return image.icc_transform("srgb", embedded=True, intent="perceptual")


def test_a_library_is_found():
    """Pillow's wheel bundles LittleCMS: without it every conversion would quietly take libvips' path."""
    assert colour._lcms() is not None


@pytest.mark.parametrize("bands", [3, 4], ids=["rgb", "rgba"])
def test_pixels_are_libvips_pixels(bands):
    """Same LittleCMS, intent and target profile: no pixel differs by more than one level (0 on
    this machine), and alpha passes through untouched."""
    source = p3(textured(300, 200, bands=3))
    if bands == 4:
        alpha = textured(300, 200, bands=4)[3]
        source = source.bandjoin(alpha)
    ours = colour.to_srgb(source)
    assert ours is not None
    assert (ours.bands, ours.format, ours.interpretation) == (bands, "uchar", "srgb")
    theirs = libvips_srgb(source)
    assert max_difference(ours, theirs) <= 1
    assert max_difference(ours, source) > 10  # the colours did change (P3 numbers are not sRGB's)
    if bands == 4:
        assert max_difference(ours[3], source[3]) == 0


def test_one_transform_per_profile():
    first, second = p3(textured(64, 48)), p3(textured(80, 60))
    colour.to_srgb(first)
    colour.to_srgb(second)
    info = colour._transform.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def with_profile(image: pyvips.Image, profile: bytes) -> pyvips.Image:
    tagged = image.copy()
    tagged.set_type(pyvips.GValue.blob_type, "icc-profile-data", profile)
    return tagged


def test_kept_transforms_are_bounded():
    """Each distinct profile (here: P3 with another device model in its header, which LittleCMS
    does not check) builds its own transform; past CACHED_PROFILES the oldest go, and a transform
    a render still holds outlives its eviction."""
    image = p3(textured(32, 24))
    profile = bytes(image.get("icc-profile-data"))
    held = colour._transform(profile, 3)
    for index in range(colour.CACHED_PROFILES + 3):
        model = index.to_bytes(4, "big")
        variant = profile[:52] + model + profile[56:]
        converted = colour.to_srgb(with_profile(image, variant))
        assert converted is not None and max_difference(converted, libvips_srgb(image)) <= 1
    assert colour._transform.cache_info().currsize == colour.CACHED_PROFILES
    pixels = bytearray(image.write_to_memory())
    held.apply((colour.ctypes.c_char * len(pixels)).from_buffer(pixels), image.width * image.height)
    assert pixels != bytearray(image.write_to_memory())


@pytest.mark.parametrize(
    "case",
    ["16-bit", "cmyk-image", "cmyk-profile", "corrupt-profile", "grey", "too-large", "no-profile", "huge-profile"],
)
def test_other_cases_are_left_to_libvips(case):
    rgb = p3(textured(64, 48))
    profile = bytes(rgb.get("icc-profile-data"))
    cmyk_profile = bytes(rgb.icc_transform("cmyk").get("icc-profile-data"))
    image = {
        "16-bit": lambda: rgb.cast("ushort").copy(interpretation="rgb16"),
        "cmyk-image": lambda: rgb.icc_transform("cmyk"),
        "cmyk-profile": lambda: with_profile(rgb, cmyk_profile),
        "corrupt-profile": lambda: with_profile(rgb, profile[:20] + bytes(len(profile) - 20)),
        "grey": lambda: with_profile(rgb[0].copy(interpretation="b-w"), profile),
        "too-large": lambda: with_profile(pyvips.Image.black(2049, 2049, bands=3).copy(interpretation="srgb"), profile),
        "no-profile": lambda: textured(64, 48),
        # The cache keys on the profile's bytes: 16 profiles of up to 16 MB must not be kept.
        "huge-profile": lambda: with_profile(rgb, profile + bytes(colour.MAX_PROFILE_BYTES)),
    }[case]()
    assert colour.to_srgb(image) is None


def test_a_killed_render_stops():
    image = p3(textured(64, 48)).copy()
    image.set_kill(True)
    with pytest.raises(pyvips.Error):
        colour.to_srgb(image)


@pytest.mark.parametrize("query", ["w=200&fm=webp", "w=200&fm=jpg", "w=150&h=150&fit=crop&fm=png", "fm=webp&q=60"])
def test_renders_are_byte_for_byte_the_same(query, monkeypatch):
    """A P3 JPEG rendered through the kept transform and through libvips' `icc_transform`."""
    data = p3(textured(400, 300)).jpegsave_buffer(Q=85, keep="icc")
    spec = parse_query(parse_qsl(query), LIMITS)

    def run() -> bytes:
        return render(data, spec, Accepts.LEGACY, CONFIG, None, RenderGuard()).body

    ours = run()
    assert colour._transform.cache_info().misses == 1
    monkeypatch.setattr(colour, "to_srgb", lambda image: None)
    assert run() == ours
