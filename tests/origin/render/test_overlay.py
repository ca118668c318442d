"""Watermarks (mark-*) and blending (blend-*) at render level: where the pixels land, per mode."""

from __future__ import annotations

from dataclasses import replace

import pytest
import pyvips

from origin.render import blend, watermark
from origin.render.blend import BlendOptions
from origin.render.overlays import options
from origin.render.text import TextOptions
from origin.render.watermark import MarkOptions
from origin.settings import defaults
from origin.spec import TransformSpec
from tests.images import BLUE, GREEN, close, encode, flat, pixel, quadrants

CONFIG = defaults().render
WHITE = (255, 255, 255)
RED = (255, 0, 0)


def ink_box(image):  # type: ignore[no-untyped-def]
    return tuple(image.find_trim(threshold=40, background=list(WHITE)))


def marked(opts: MarkOptions, mark_size: tuple[int, int] = (20, 10), base: tuple[int, int] = (200, 100)):  # type: ignore[no-untyped-def]
    data = encode(flat(*mark_size, RED))
    mark = watermark.load_mark(data, *base, opts, CONFIG)
    return watermark.composite(flat(*base, WHITE), mark, opts)


def test_mark_x_and_y_put_the_mark_there() -> None:
    image = marked(MarkOptions(x=50, y=30))
    assert ink_box(image) == (50, 30, 20, 10)
    assert close(pixel(image, 55, 35), RED) and close(pixel(image, 45, 35), WHITE)


def test_mark_x_alone_keeps_the_vertical_alignment() -> None:
    assert ink_box(marked(MarkOptions(x=50))) == (50, 100 - 10 - 5, 20, 10)
    assert ink_box(marked(MarkOptions(y=7, align=("left", "top")))) == (5, 7, 20, 10)


def test_tiled_marks_repeat_mark_pad_apart() -> None:
    image = marked(MarkOptions(tile=True, pad=5), mark_size=(10, 10))
    for x, y in ((2, 2), (17, 2), (32, 17), (182, 92)):
        assert close(pixel(image, x, y), RED), (x, y)
    for x, y in ((12, 2), (2, 12), (27, 27)):
        assert close(pixel(image, x, y), WHITE), (x, y)


def test_rotation_changes_the_marks_box() -> None:
    assert ink_box(marked(MarkOptions(rot=90, x=10, y=10), mark_size=(40, 10)))[2:] == (10, 40)
    _, _, w, h = ink_box(marked(MarkOptions(rot=45, x=10, y=10), mark_size=(40, 10)))
    assert 33 <= w <= 38 and 33 <= h <= 38


@pytest.mark.parametrize(
    ("fit", "size"),
    [("clip", (80, 40)), ("crop", (80, 80)), ("scale", (80, 80)), ("max", (40, 20)), ("fill", (80, 40))],
)
def test_mark_w_h_and_fit(fit: str, size: tuple[int, int]) -> None:
    image = marked(MarkOptions(w=80, h=80, fit=fit, x=0, y=0), mark_size=(40, 20))
    assert ink_box(image)[2:] == size


def test_mark_w_as_a_share_of_the_base() -> None:
    assert ink_box(marked(MarkOptions(w=0.5, x=0, y=0)))[2:] == (100, 50)


GREY = (128, 128, 128)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("normal", (255, 0, 0)),
        ("multiply", (128, 0, 0)),
        ("screen", (255, 128, 128)),
        ("darken", (128, 0, 0)),
        ("lighten", (255, 128, 128)),
        ("difference", (127, 128, 128)),
        ("exclusion", (127, 128, 128)),
    ],
)
def test_colour_blend_per_separable_mode(mode: str, expected: tuple[int, int, int]) -> None:
    out = blend.blend(flat(40, 30, GREY), None, BlendOptions(color=(255, 0, 0, 255), mode=mode))
    assert close(pixel(out, 20, 15), expected, 4), pixel(out, 20, 15)


def test_overlay_and_light_modes_keep_grey_midtones_tinted() -> None:
    for mode in ("overlay", "softlight", "hardlight", "dodge", "burn"):
        r, g, b = pixel(blend.blend(flat(40, 30, GREY), None, BlendOptions(color=(255, 0, 0, 255), mode=mode)), 5, 5)
        assert r > g + 40 and g == b, mode


def test_blend_alpha_scales_the_layer() -> None:
    out = blend.blend(flat(40, 30, GREY), None, BlendOptions(color=(255, 0, 0, 255), mode="normal", alpha=50))
    assert close(pixel(out, 5, 5), (191, 64, 64), 4)


def test_non_separable_modes_take_their_components_from_the_blend() -> None:
    tinted = pixel(blend.blend(flat(40, 30, GREY), None, BlendOptions(color=(255, 0, 0, 255), mode="color")), 5, 5)
    assert tinted[0] > tinted[1] + 40 and abs(sum(tinted) / 3 - 110) < 40  # red hue, grey's lightness
    greyed = pixel(
        blend.blend(flat(40, 30, RED), None, BlendOptions(color=(128, 128, 128, 255), mode="saturation")), 5, 5
    )
    assert max(greyed) - min(greyed) < 12  # the grey's zero chroma
    rehued = pixel(blend.blend(flat(40, 30, (0, 0, 255)), None, BlendOptions(color=RED + (255,), mode="hue")), 5, 5)
    assert rehued[0] > rehued[2]  # blue turned towards red
    lighter = pixel(
        blend.blend(flat(40, 30, (40, 40, 40)), None, BlendOptions(color=WHITE + (255,), mode="luminosity")), 5, 5
    )
    assert min(lighter) > 200


def test_blend_image_at_blend_x_y() -> None:
    data = encode(flat(20, 20, (0, 0, 0)))
    at = BlendOptions(mode="normal", x=30, y=10)
    out = blend.blend(flat(100, 50, WHITE), blend.load_blend(data, 100, 50, at, CONFIG), at)
    assert ink_box(out) == (30, 10, 20, 20)
    corner = BlendOptions(mode="normal", align=("bottom", "right"), pad=3)
    aligned = blend.blend(flat(100, 50, WHITE), blend.load_blend(data, 100, 50, corner, CONFIG), corner)
    assert ink_box(aligned) == (100 - 23, 50 - 23, 20, 20)


def test_blend_size_inherit_and_fit() -> None:
    data = encode(flat(10, 20, (0, 0, 0)))
    inherit = blend.load_blend(data, 100, 50, BlendOptions(inherit=True, fit="scale"), CONFIG).image
    assert (inherit.width, inherit.height) == (100, 50)
    assert blend.load_blend(data, 100, 50, BlendOptions(w=40, h=40, fit="clip"), CONFIG).image.width == 20
    assert (lambda i: (i.width, i.height))(
        blend.load_blend(data, 100, 50, BlendOptions(w=40, h=40, fit="crop"), CONFIG).image
    ) == (40, 40)
    assert blend.load_blend(data, 100, 50, BlendOptions(w=0.5), CONFIG).image.width == 50


GREY = (128, 128, 128)


def blended(source: pyvips.Image, base: tuple[int, int], opts: BlendOptions) -> pyvips.Image:
    layer = blend.load_blend(encode(source), *base, opts, CONFIG)
    return blend.blend(flat(*base, GREY), layer, opts)


@pytest.mark.parametrize(
    ("align", "expected"),
    [(("left", "top"), RED), (("right", "top"), GREEN), (("left", "bottom"), BLUE), (("right", "bottom"), WHITE)],
)
def test_a_blend_box_larger_than_the_base_is_clipped_by_the_base(align, expected) -> None:  # type: ignore[no-untyped-def]
    """imgix: blend-w/h may exceed the base; blend-fit=crop makes the layer exactly the box, and
    the base's edges clip it. A 300x300 box of quadrants on a 10x10 base shows the corner of the
    box the alignment puts there."""
    out = blended(quadrants(200, 200), (10, 10), BlendOptions(mode="normal", w=300, h=300, fit="crop", align=align))
    assert (out.width, out.height) == (10, 10)
    assert all(close(pixel(out, x, y), expected) for x in (0, 9) for y in (0, 9))


def test_a_centred_blend_box_larger_than_the_base_shows_its_middle() -> None:
    out = blended(
        quadrants(200, 200), (40, 40), BlendOptions(mode="normal", w=300, h=300, fit="crop", align=("center", "middle"))
    )
    # the box's centre, where its quadrants meet, at the base's centre
    assert close(pixel(out, 10, 10), RED) and close(pixel(out, 30, 10), GREEN)
    assert close(pixel(out, 10, 30), BLUE) and close(pixel(out, 30, 30), WHITE)


def test_a_large_blend_box_keeps_blend_crop_and_the_image_s_aspect() -> None:
    """A 400x200 red | blue image covers a 300x300 crop box at 600x300: the centre crop shows red
    on its left; blend-crop=right cuts the blue half; blend-x moves the box along."""
    halves = flat(200, 200, RED).join(flat(200, 200, BLUE), "horizontal")
    opts = BlendOptions(mode="normal", w=300, h=300, fit="crop")
    assert close(pixel(blended(halves, (10, 10), opts), 5, 5), RED)
    assert close(pixel(blended(halves, (10, 10), replace(opts, crop=("right",))), 5, 5), BLUE)
    # x=-155: the base shows the box's columns 155-164, past the red | blue seam at 150
    assert close(pixel(blended(halves, (10, 10), replace(opts, x=-155)), 5, 5), BLUE)
    assert pixel(blended(halves, (10, 10), replace(opts, x=10)), 5, 5) == GREY  # placed off the base


@pytest.mark.parametrize(
    ("kind", "family", "given"),
    [
        (MarkOptions, "mark", {"tile": False}),
        (BlendOptions, "blend", {"inherit": False}),
        (TextOptions, "txt", {"text": "a"}),
    ],
)
def test_overlay_options_default_as_the_spec_does(kind, family, given) -> None:  # type: ignore[no-untyped-def]
    """Every option is read off the spec field of its parameter, and defaults as the spec does."""
    assert options(kind, TransformSpec(), family, **given) == kind(**given)


def test_overlay_options_read_the_family_s_parameters() -> None:
    spec = TransformSpec(mark="a.png", mark_pad=7, mark_align=("left", "top"), mark_tile="grid", blend_pad=3)
    assert options(MarkOptions, spec, "mark", tile=True) == MarkOptions(pad=7, align=("left", "top"), tile=True)


def test_a_mark_box_far_larger_than_the_base_is_cut_lazily_then_shrunk() -> None:
    """A 4000x1 mark covering a 2000x2000 crop box (8,000,000x2000 before the cut, far more than
    memory holds) is cut to the box and shrunk to the image less mark-pad."""
    opts = MarkOptions(w=2000, h=2000, fit="crop")
    assert ink_box(marked(opts, mark_size=(4000, 1), base=(100, 100))) == (5, 5, 90, 90)
