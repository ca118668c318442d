"""imgix's parameter families as users see them: sizes, pixels, formats by magic bytes,
blurhash decoded back to the image's colours, palettes of a test pattern."""

from __future__ import annotations

import json
import math
from urllib.parse import parse_qsl

import pytest

from origin.errors import OriginError
from origin.formats import Accepts
from origin.params import parse_query
from origin.render import render
from origin.render.guard import RenderGuard
from origin.settings import defaults
from tests.images import BLUE, GREEN, RED, WHITE, close, decode, encode, flat, magic, pixel, quadrants

LIMITS = defaults().output

SOURCE = encode(quadrants(300, 200))


def run(query: str, data: bytes = SOURCE, images: dict[str, bytes] | None = None):
    spec = parse_query(parse_qsl(query, keep_blank_values=True), LIMITS)
    return render(data, spec, Accepts.LEGACY, defaults().render, None, RenderGuard(), images=images or {})


def image_of(query: str, **kwargs):
    rendered = run(query, **kwargs)
    return decode(rendered.body)


# -- size bounds, orientation, padding ---------------------------------------------------


@pytest.mark.parametrize(
    ("query", "size"),
    [
        ("fit=crop&w=200&h=100&max-w=120", (120, 100)),
        ("fit=crop&w=50&h=100&min-w=80", (80, 100)),
        ("fit=crop&w=100&ar=1:2&max-h=150", (100, 150)),
        ("fit=crop&h=50&ar=1:1&min-h=70", (50, 70)),
        ("w=100&max-w=50", (100, 67)),  # without fit=crop the bounds cannot act
    ],
)
def test_min_and_max_bound_a_crop(query, size):
    image = image_of(query + "&fm=png")
    assert (image.width, image.height) == size


@pytest.mark.parametrize(
    ("orient", "size", "top_left"),
    [
        ("1", (300, 200), RED),
        ("0", (300, 200), RED),
        ("3", (300, 200), WHITE),
        ("90", (200, 300), GREEN),
        ("270", (200, 300), BLUE),
        ("6", (200, 300), BLUE),
        ("2", (300, 200), GREEN),
    ],
)
def test_orient_overrides_the_orientation(orient, size, top_left):
    image = image_of(f"orient={orient}&fm=png")
    assert (image.width, image.height) == size
    assert close(pixel(image, 3, 3), top_left)


def test_pad_per_side_overrides_pad():
    image = image_of("w=300&h=200&fit=scale&pad=10&pad-left=40&pad-top=0&bg=000&fm=png")
    assert (image.width, image.height) == (300, 200)
    assert close(pixel(image, 20, 100), (0, 0, 0))  # 40 px on the left
    assert close(pixel(image, 295, 100), (0, 0, 0))  # 10 px on the right
    assert not close(pixel(image, 150, 1), (0, 0, 0))  # none at the top


# -- dpr -----------------------------------------------------------------------------------


def test_dpr_2_draws_the_text_twice_as_tall_and_twice_as_far_in():
    """imgix's text lengths are CSS pixels: at dpr=2 the image is twice as wide and the text in it
    looks the same, so its ink is twice as tall and wide, txt-pad twice as far from the edge."""
    white = encode(flat(400, 200, WHITE))
    query = "w=200&txt=HHHH&txt-size=20&txt-align=top,left&txt-pad=8&fm=png"
    one, two = image_of(query, data=white), image_of(f"{query}&dpr=2", data=white)
    assert (one.width, two.width) == (200, 400)
    left1, top1, width1, height1 = one.find_trim(threshold=10, background=list(WHITE))
    left2, top2, width2, height2 = two.find_trim(threshold=10, background=list(WHITE))
    assert height2 == pytest.approx(2 * height1, abs=2) and width2 == pytest.approx(2 * width1, abs=3)
    assert left2 == pytest.approx(2 * left1, abs=2) and top2 == pytest.approx(2 * top1, abs=2)


@pytest.mark.parametrize("width", ["w=150", "w=0.5"], ids=["pixels", "share"])
def test_dpr_2_doubles_borders_and_padding(width: str):
    """Beside a share of the source dpr is applied at render time, not parse time: the same."""
    for extra, colour in (("border=5,000", (0, 0, 0)), ("pad=5&bg=00f", BLUE)):
        one = image_of(f"{width}&{extra}&fm=png")
        two = image_of(f"{width}&dpr=2&{extra}&fm=png")
        assert two.width == 2 * one.width and two.height == pytest.approx(2 * one.height, abs=1)
        assert close(pixel(one, 3, 40), colour) and close(pixel(one, 7, 40), RED), extra  # 5 px at 1x
        assert close(pixel(two, 8, 80), colour) and close(pixel(two, 12, 80), RED), extra  # 10 px at 2x


# -- border -------------------------------------------------------------------------------


def test_border_frames_the_image_within_w_and_adds_to_the_size_without():
    """A border frames the image as `pad` does (imgix's pad page: added to the dimensions without
    w/h; with them, the image including it fits the requested size). The image is not covered."""
    image = image_of("w=300&border=10,00f&fm=png")
    assert (image.width, image.height) == (300, 207)  # 280 px of 3:2 image, 187 high, + 2 x 10
    for x, y in ((2, 100), (9, 100), (150, 5), (295, 100), (150, 201), (150, 206)):
        assert close(pixel(image, x, y), BLUE), (x, y)
    assert close(pixel(image, 10, 10), RED) and close(pixel(image, 289, 10), GREEN)  # its corners show
    assert close(pixel(image, 10, 196), BLUE) and close(pixel(image, 289, 196), WHITE)
    bare = image_of("border=10,00f&fm=png")
    assert (bare.width, bare.height) == (320, 220)  # the 300x200 source and its frame
    assert close(pixel(bare, 9, 9), BLUE) and close(pixel(bare, 10, 10), RED) and close(pixel(bare, 309, 10), GREEN)
    assert close(pixel(bare, 310, 215), BLUE)


def test_border_sides_and_radius():
    image = image_of("border=10,000&border-left=30&border-top=0&border-radius=40&fm=png")
    assert close(pixel(image, 25, 50), (0, 0, 0)) and close(pixel(image, 35, 50), RED)
    assert close(pixel(image, 150, 2), RED) or close(pixel(image, 150, 2), GREEN)
    assert pixel(image, 1, 1)[3] == 0  # outside the rounded outer corner: transparent
    assert pixel(image, 150, 100)[3] == 255


def test_border_radius_inner_rounds_the_frame_inside():
    image = image_of("border=20,000&border-radius-inner=30&fm=png")
    assert close(pixel(image, 24, 24), (0, 0, 0))  # the inner corner is filled by the frame
    assert close(pixel(image, 40, 60), RED)


# -- mask ---------------------------------------------------------------------------------


def test_mask_ellipse_makes_corners_transparent():
    image = image_of("mask=ellipse&fm=png")
    assert pixel(image, 1, 1)[3] == 0 and pixel(image, 298, 198)[3] == 0
    assert pixel(image, 150, 100)[3] == 255 and pixel(image, 150, 2)[3] > 0


def test_mask_corners_with_radius_and_mask_bg():
    image = image_of("mask=corners&corner-radius=30&mask-bg=00f&fm=png")
    assert close(pixel(image, 1, 1), BLUE + (255,))
    assert close(pixel(image, 30, 30), RED)
    image = image_of("mask=corners&corner-radius=0,0,30,0&fm=png")
    assert pixel(image, 1, 1)[3] == 255 and pixel(image, 298, 198)[3] == 0


def test_mask_image_from_storage_uses_its_alpha_or_luminance():
    # the mask's luminance: red/green/blue quadrants are mid-grey, white is opaque
    image = image_of("mask=masks/q.png&fm=png", images={"mask": encode(quadrants(40, 40))})
    assert pixel(image, 290, 190)[3] == 255
    assert 0 < pixel(image, 10, 10)[3] < 255


def test_mask_without_alpha_format_gets_white_or_bg():
    image = image_of("mask=ellipse&fm=jpg")
    assert close(pixel(image, 1, 1), WHITE)


# -- adjustments, stylize, noise reduction -----------------------------------------------


def mean(image) -> float:
    return image.extract_band(0, n=3).avg()


GREY = encode(flat(60, 40, (100, 100, 100)))


@pytest.mark.parametrize(
    ("query", "direction"),
    [("exp=50", 1), ("exp=-50", -1), ("shad=80", 1), ("high=-80", 0)],
)
def test_exposure_and_shadows_move_brightness(query, direction):
    before = mean(image_of("fm=png&bri=0&w=60", data=GREY))
    after = mean(image_of(f"{query}&fm=png", data=GREY))
    assert (after > before + 5) if direction > 0 else (after < before - 5) if direction < 0 else abs(after - before) < 2


def test_highlights_pull_bright_areas_down():
    bright = encode(flat(60, 40, (230, 230, 230)))
    assert mean(image_of("high=-100&fm=png", data=bright)) < 210


def test_vibrance_raises_dull_colours_more():
    dull = encode(flat(20, 20, (140, 120, 120)))
    r, g, _ = pixel(image_of("vib=100&fm=png", data=dull), 5, 5)[:3]
    assert r - g > 25


def test_usm_sharpens_and_softens_edges():
    edge = encode(flat(20, 20, (40, 40, 40)).join(flat(20, 20, (200, 200, 200)), "horizontal"))
    sharp = image_of("usm=100&usmrad=4&fm=png", data=edge)
    soft = image_of("usm=-100&usmrad=4&fm=png", data=edge)
    assert pixel(sharp, 17, 10)[0] < 40 and pixel(sharp, 22, 10)[0] > 200
    assert pixel(soft, 19, 10)[0] > 60


def test_nr_smooths_noise_but_keeps_edges():
    import pyvips

    noise = (pyvips.Image.gaussnoise(80, 40, sigma=8, mean=100)).cast("uchar").copy(interpretation="b-w")
    noisy = encode(noise.bandjoin([noise, noise]).copy(interpretation="srgb"))
    before = decode(noisy).extract_band(0).deviate()
    assert image_of("nr=100&nrs=50&fm=png", data=noisy).extract_band(0).deviate() < before * 0.7


def test_px_makes_blocks():
    image = image_of("px=20&fm=png", data=encode(quadrants(60, 40).gaussblur(4)))
    assert pixel(image, 0, 0) == pixel(image, 19, 19)
    assert pixel(image, 20, 0) != pixel(image, 0, 0)


def test_htn_is_a_two_level_dot_screen():
    image = image_of("htn=50&fm=png", data=GREY)
    values = {pixel(image, x, y)[0] for x in range(0, 40, 3) for y in range(0, 30, 3)}
    assert values <= {0, 255} and values == {0, 255}


def test_duotone_maps_dark_to_first_and_light_to_second():
    image = image_of(
        "duotone=f00,00f&fm=png", data=encode(flat(10, 10, (0, 0, 0)).join(flat(10, 10, (255, 255, 255)), "horizontal"))
    )
    assert close(pixel(image, 3, 3), RED) and close(pixel(image, 15, 3), BLUE)
    half = image_of("duotone=f00,00f&duotone-alpha=50&fm=png", data=encode(flat(10, 10, (0, 0, 0))))
    assert close(pixel(half, 3, 3), (128, 0, 0), 4)


# -- trim, transparency grid, focal point debug --------------------------------------------


def framed(pad: int = 20) -> bytes:
    return encode(quadrants(60, 40).embed(pad, pad, 60 + 2 * pad, 40 + 2 * pad, extend="white"))


def test_trim_auto_with_md_sd_and_pad():
    assert (image_of("trim=auto&fm=png", data=framed()).width) == 60
    trimmed = image_of("trim=auto&trim-pad=5&fm=png", data=framed())
    assert (trimmed.width, trimmed.height) == (70, 50) and close(pixel(trimmed, 1, 1), WHITE)
    assert image_of("trim=auto&trim-md=300&fm=png", data=framed()).width == 100  # nothing differs that much


def test_transparency_grid_draws_a_checkerboard_under_transparent_areas():
    image = image_of("mask=ellipse&transparency=grid&grid-size=5&grid-colors=f00,00f&fm=png")
    assert close(pixel(image, 1, 1), RED) and close(pixel(image, 6, 1), BLUE) and close(pixel(image, 6, 6), RED)
    default = image_of("mask=ellipse&transparency=grid&fm=png")
    assert close(pixel(default, 1, 1), (0xD0, 0xD7, 0xDD)) and close(pixel(default, 5, 1), WHITE)


def test_fp_debug_draws_where_the_focal_point_is():
    plain = image_of(
        "fit=crop&crop=focalpoint&fp-x=0.25&fp-y=0.25&w=300&h=200&fm=png", data=encode(flat(300, 200, (0, 255, 0)))
    )
    marked = image_of(
        "fit=crop&crop=focalpoint&fp-x=0.25&fp-y=0.25&w=300&h=200&fp-debug=1&fm=png",
        data=encode(flat(300, 200, (0, 255, 0))),
    )
    assert close(pixel(plain, 75, 50), GREEN)
    assert close(pixel(marked, 75, 50), RED) and close(pixel(marked, 225, 150), GREEN)


# -- formats -------------------------------------------------------------------------------


def test_png8_is_a_palette_png_and_png32_has_alpha():
    png8 = run("fm=png8")
    assert magic(png8.body) == "png" and png8.body[25] == 3  # IHDR colour type 3: palette
    png32 = run("fm=png32", data=encode(quadrants(30, 20), ".jpg"))
    assert magic(png32.body) == "png" and png32.body[25] == 6 and decode(png32.body).bands == 4


def test_colorquant_limits_the_palette():
    body = run("fm=png&colorquant=4").body
    assert body[25] == 3 and body[24] == 2  # 2 bits: 4 colours


def test_chromasub_and_dpi_and_cs():
    full = run("fm=jpg&chromasub=444&q=90").body
    sub = run("fm=jpg&chromasub=420&q=90").body
    assert magic(full) == "jpg" and full != sub
    assert decode(full).get("jpeg-chroma-subsample") == "4:4:4"
    assert decode(sub).get("jpeg-chroma-subsample") == "4:2:0"
    for fm in ("jpg", "png"):
        assert round(decode(run(f"fm={fm}&dpi=300").body).xres * 25.4) == 300
    profiled = decode(run("fm=png&cs=srgb").body)
    assert profiled.get_typeof("icc-profile-data") and not decode(run("fm=png&cs=strip").body).get_typeof(
        "icc-profile-data"
    )


def blurhash_decode(text: str, width: int, height: int) -> list[list[tuple[int, int, int]]]:
    """A small BlurHash decoder, written from the published algorithm."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"

    def b83(s: str) -> int:
        value = 0
        for c in s:
            value = value * 83 + alphabet.index(c)
        return value

    def lin(v: int) -> float:
        v /= 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    def srgb(v: float) -> int:
        v = max(0.0, min(1.0, v))
        return round((v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055) * 255)

    size = b83(text[0])
    nx, ny = size % 9 + 1, size // 9 + 1
    maximum = (b83(text[1]) + 1) / 166
    dc = b83(text[2:6])
    colours = [(lin(dc >> 16), lin((dc >> 8) & 255), lin(dc & 255))]
    for i in range(1, nx * ny):
        v = b83(text[4 + i * 2 : 6 + i * 2])
        q = (v // 361, (v // 19) % 19, v % 19)
        colours.append(tuple(math.copysign(((c - 9) / 9) ** 2, c - 9) * maximum for c in q))
    assert len(text) == 4 + 2 * nx * ny
    rows = []
    for y in range(height):
        row = []
        for x in range(width):
            acc = [0.0, 0.0, 0.0]
            for j in range(ny):
                for i in range(nx):
                    basis = math.cos(math.pi * x * i / width) * math.cos(math.pi * y * j / height)
                    for k in range(3):
                        acc[k] += colours[j * nx + i][k] * basis
            row.append(tuple(srgb(v) for v in acc))
        rows.append(row)
    return rows


def test_blurhash_decodes_to_the_image_colours():
    rendered = run("fm=blurhash&w=100")
    text = rendered.body.decode()
    assert len(text) == 28  # 4 x 3 components
    pixels = blurhash_decode(text, 8, 8)
    r, g, b = pixels[1][1]
    assert r > 200 and r > g + 100 and r > b + 100  # the red quadrant
    r, g, b = pixels[1][6]
    assert g > 200 and g > r + 100 and g > b + 100  # the green one
    r, g, b = pixels[6][1]
    assert b > 200 and b > r + 100 and b > g + 100  # the blue one
    assert min(pixels[6][6]) > 200  # the white one
    flat_hash = run("fm=blurhash", data=encode(flat(30, 20, (200, 100, 50)))).body.decode()
    decoded = [p for row in blurhash_decode(flat_hash, 16, 16) for p in row]
    average = tuple(sum(p[k] for p in decoded) / len(decoded) for k in range(3))
    assert close(average, (200, 100, 50), 8)


# -- palettes ------------------------------------------------------------------------------


def test_palette_json_lists_the_dominant_colours_of_the_pattern():
    body = json.loads(run("palette=json&colors=4").body)
    found = [tuple(round(c[k] * 255) for k in ("red", "green", "blue")) for c in body["colors"]]
    assert len(found) == 4
    for expected in (RED, GREEN, BLUE, WHITE):
        assert any(close(f, expected, 8) for f in found), (expected, found)
    assert 0 < body["average_luminance"] < 1
    assert all(c["hex"].startswith("#") and len(c["hex"]) == 7 for c in body["colors"])


def test_palette_css_uses_the_prefix_and_colors_bounds_the_count():
    rendered = run("palette=css&prefix=brand&colors=2")
    css = rendered.body.decode()
    assert rendered.format == "css"
    assert ".brand-fg-1 {" in css and ".brand-bg-2 {" in css and ".brand-fg-3" not in css


@pytest.mark.parametrize(
    "query", ["prefix=a%7Bb&palette=css", "palette=svg", "chromasub=421", "cs=adobergb1998", "orient=45"]
)
def test_bad_values_are_400s(query):
    from origin.errors import OriginError

    with pytest.raises(OriginError) as info:
        parse_query(parse_qsl(query), LIMITS)
    assert info.value.status == 400


def test_border_and_pad_on_each_side():
    image = image_of("border=5,000&border-right=20&border-bottom=0&fm=png")
    assert (image.width, image.height) == (325, 205)
    assert close(pixel(image, 315, 50), (0, 0, 0)) and close(pixel(image, 2, 50), (0, 0, 0))
    assert close(pixel(image, 303, 50), GREEN) and close(pixel(image, 150, 204), BLUE)  # no bottom frame
    both = image_of("w=300&border=10,000&pad=10&bg=ff0&fm=png")  # the frame outside, the padding in it
    assert close(pixel(both, 5, 50), (0, 0, 0)) and close(pixel(both, 15, 50), (255, 255, 0))
    assert close(pixel(both, 22, 50), RED) and both.width == 300
    padded = image_of("w=300&h=200&fit=scale&pad-right=30&pad-bottom=20&bg=000&fm=png")
    assert close(pixel(padded, 290, 50), (0, 0, 0)) and close(pixel(padded, 50, 190), (0, 0, 0))
    assert close(pixel(padded, 3, 3), RED)


def test_trim_sd_keeps_a_side_that_varies_too_much():
    import pyvips

    noise = (pyvips.Image.gaussnoise(20, 80, sigma=2, mean=252) > 252).ifthenelse(255, 249).cast("uchar")
    left = noise.bandjoin([noise, noise]).copy(interpretation="srgb")
    body = quadrants(60, 40).embed(0, 20, 80, 80, extend="white")
    source = encode(left.join(body, "horizontal"))
    assert image_of("trim=auto&trim-sd=10&fm=png", data=source).width == 60
    assert image_of("trim=auto&trim-sd=1&fm=png", data=source).width == 80  # the noisy left side stays


# -- any-angle rotation -------------------------------------------------------------------


def centred_square() -> bytes:
    """100x100: red quadrant top-left, the others as `quadrants`, a 20 px black square centred."""
    return encode(quadrants(100, 100).insert(flat(20, 20, (0, 0, 0)), 40, 40))


def test_rot_45_grows_the_canvas_with_transparent_corners():
    image = image_of("rot=45&fm=png", data=centred_square())
    assert (image.width, image.height) == (141, 141)  # 100 * sqrt(2)
    assert image.bands == 4
    for x, y in ((0, 0), (140, 0), (0, 140), (140, 140)):
        assert pixel(image, x, y)[3] == 0
    assert close(pixel(image, 70, 70), (0, 0, 0, 255))  # the source's centre stays the centre
    # Counter-clockwise: the top-left (red) corner turns to the left, the top-right (green) to the top.
    assert close(pixel(image, 12, 70), (*RED, 255))
    assert close(pixel(image, 70, 12), (*GREEN, 255))


def test_rot_fills_the_corners_with_bg_or_white_without_alpha():
    assert close(pixel(image_of("rot=45&bg=00f&fm=png", data=centred_square()), 2, 2), (*BLUE, 255))
    jpeg_out = image_of("rot=30&fm=jpg", data=centred_square())
    assert (jpeg_out.width, jpeg_out.height) == (137, 137)
    assert close(pixel(jpeg_out, 1, 1), WHITE)


def test_rot_any_angle_then_sizes_the_turned_image():
    image = image_of("rot=30&w=180&fm=png")  # 300x200 turns to 360x323
    assert (image.width, image.height) == (180, 162)


def test_quarter_turns_are_unchanged_and_angles_fold():
    assert run("rot=90&fm=png").body == run("rot=-270&fm=png").body
    assert (image_of("rot=450&fm=png").width, image_of("rot=450&fm=png").height) == (200, 300)
    assert image_of("rot=359.5&fm=png").width == 302


# -- rect: pixels, shares of the source, keywords -------------------------------------------


@pytest.mark.parametrize(
    ("rect", "size", "colours"),
    [
        ("150,0,150,100", (150, 100), (GREEN, GREEN)),  # pixels, as before
        ("right,bottom,0.5,0.5", (150, 100), (WHITE, WHITE)),  # the bottom-right quadrant
        ("0,0.5,0.5,0.5", (150, 100), (BLUE, BLUE)),  # shares: the bottom-left quadrant
        ("center,middle,0.5,100", (150, 100), (RED, WHITE)),  # centred: red top-left, white bottom-right
        ("left,top,0.5,1.0", (150, 200), (RED, BLUE)),  # 1.0 is the whole height
    ],
)
def test_rect_takes_shares_and_keywords(rect, size, colours):
    image = image_of(f"rect={rect}&fm=png")
    assert (image.width, image.height) == size
    assert close(pixel(image, 2, 2), colours[0])
    assert close(pixel(image, size[0] - 3, size[1] - 3), colours[1])


def test_rect_shares_are_of_the_source_then_w_sizes_the_region():
    image = image_of("rect=0.5,0,0.5,0.5&w=75&fm=png")  # the top-right quadrant, halved
    assert (image.width, image.height) == (75, 50)
    assert close(pixel(image, 37, 25), GREEN)


@pytest.mark.parametrize("rect", ["1.5,0,10,10", "0,0,0.0,10", "0,left,10,10", "top,0,10,10", "0,0,10,right"])
def test_rect_bad_forms_are_400s(rect):
    with pytest.raises(OriginError) as info:
        run(f"rect={rect}")
    assert info.value.status == 400 and "rect" in info.value.message


# -- fill=gradient --------------------------------------------------------------------------

GREY_SQUARE = encode(flat(100, 100, (128, 128, 128)))
"""A 100x100 grey source: with fit=fill&w=100&h=300 it sits in the middle of a 100x300 canvas."""


def test_linear_gradient_fills_the_padding_from_colour1_to_colour2():
    query = "fit=fill&w=100&h=300&fill=gradient&fill-gradient-linear=f00,00f&fm=png"
    image = image_of(query, data=GREY_SQUARE)
    assert (image.width, image.height) == (100, 300)
    assert close(pixel(image, 50, 0), RED, 4)  # default direction bottom: colour1 at the top
    assert close(pixel(image, 50, 299), BLUE, 4)  # colour2 at the bottom
    assert close(pixel(image, 50, 150), (128, 128, 128), 4)  # the image itself, untouched
    assert close(pixel(image, 50, 50), (212, 0, 43), 4)  # a sixth of the way down


def test_linear_gradient_direction_and_colour_space():
    query = "fit=fill&w=300&h=100&fill=gradient&fill-gradient-linear=000,fff&fill-gradient-linear-direction=left"
    image = image_of(query + "&fm=png", data=GREY_SQUARE)
    assert close(pixel(image, 0, 50), WHITE, 4) and close(pixel(image, 299, 50), (0, 0, 0), 4)
    srgb = pixel(image, 90, 50)[0]
    linear = pixel(image_of(query + "&fill-gradient-cs=linear&fm=png", data=GREY_SQUARE), 90, 50)[0]
    assert linear > srgb + 20  # mixing light linearly is lighter than mixing sRGB values


def test_radial_gradient_centre_and_edge():
    query = (
        "fit=fill&w=400&h=100&fill=gradient&fill-gradient-type=radial&fill-gradient-radial=fff,000"
        "&fill-gradient-radial-x=0.125&fill-gradient-radial-radius=10,40&fm=png"
    )
    image = image_of(query, data=GREY_SQUARE)
    assert (image.width, image.height) == (400, 100)
    centre = round(0.125 * 399)
    assert close(pixel(image, centre, 50), WHITE, 4)  # inside radius1: colour1
    assert close(pixel(image, centre + 25, 50), (128, 128, 128), 8)  # half way from radius1 to radius2
    assert close(pixel(image, centre, 5), (0, 0, 0), 4)  # 45 px away, past radius2: colour2


def test_gradient_without_colours_takes_the_image_vibrant_dark_and_light():
    source = encode(flat(100, 50, (20, 20, 120)).join(flat(100, 50, (250, 200, 200)), "vertical"))
    image = image_of("fit=fill&w=100&h=300&fill=gradient&fm=png", data=source)
    assert close(pixel(image, 50, 0), (20, 20, 120), 8)
    assert close(pixel(image, 50, 299), (250, 200, 200), 8)


def test_gradient_details_need_fill_gradient():
    assert parse_query([("fill-gradient-type", "radial")], LIMITS) == parse_query([], LIMITS)
    solid = parse_query(parse_qsl("fit=fill&w=10&fill-gradient-linear=f00,00f"), LIMITS)
    assert solid == parse_query(parse_qsl("fit=fill&w=10"), LIMITS)


def test_palette_json_names_dominant_colors_by_lightness_and_saturation():
    stripes = [(220, 30, 30), (20, 20, 110), (240, 190, 190), (140, 110, 110), (60, 50, 50)]
    source = flat(40, 40, stripes[0])
    for colour in stripes[1:]:
        source = source.join(flat(40, 40, colour), "horizontal")
    body = json.loads(run("palette=json", data=encode(source)).body)
    named = {k: tuple(round(v[c] * 255) for c in ("red", "green", "blue")) for k, v in body["dominant_colors"].items()}
    assert close(named["vibrant"], stripes[0], 3)
    assert close(named["vibrant_dark"], stripes[1], 3)
    assert close(named["vibrant_light"], stripes[2], 3)
    assert close(named["muted"], stripes[3], 3)
    assert close(named["muted_dark"], stripes[4], 3)
    assert all(c["hex"].startswith("#") and len(c["hex"]) == 7 for c in body["dominant_colors"].values())
