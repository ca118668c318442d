"""Watermarks (mark-*) and blending (blend-*) at render level: where the pixels land, per mode."""

from __future__ import annotations

import pytest

from origin.render import blend, watermark
from origin.render.blend import BlendOptions
from origin.render.overlays import options
from origin.render.text import TextOptions
from origin.render.watermark import MarkOptions
from origin.settings import defaults
from origin.spec import TransformSpec
from tests.images import close, encode, flat, pixel

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
    layer = blend.load_blend(encode(flat(20, 20, (0, 0, 0))), 100, 50, BlendOptions(), CONFIG)
    out = blend.blend(flat(100, 50, WHITE), layer, BlendOptions(mode="normal", x=30, y=10))
    assert ink_box(out) == (30, 10, 20, 20)
    aligned = blend.blend(flat(100, 50, WHITE), layer, BlendOptions(mode="normal", align=("bottom", "right"), pad=3))
    assert ink_box(aligned) == (100 - 23, 50 - 23, 20, 20)


def test_blend_size_inherit_and_fit() -> None:
    data = encode(flat(10, 20, (0, 0, 0)))
    inherit = blend.load_blend(data, 100, 50, BlendOptions(inherit=True, fit="scale"), CONFIG)
    assert (inherit.width, inherit.height) == (100, 50)
    assert blend.load_blend(data, 100, 50, BlendOptions(w=40, h=40, fit="clip"), CONFIG).width == 20
    assert (lambda i: (i.width, i.height))(
        blend.load_blend(data, 100, 50, BlendOptions(w=40, h=40, fit="crop"), CONFIG)
    ) == (40, 40)
    assert blend.load_blend(data, 100, 50, BlendOptions(w=0.5), CONFIG).width == 50


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
