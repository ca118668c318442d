"""`txt` rendering: ink where the alignment puts it and nowhere else, fonts shipped, limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from origin.errors import InvalidParam, ParamOutOfRange
from origin.render import text
from origin.render.text import TextOptions
from origin.settings import defaults
from tests import ROOT
from tests.images import flat

LIMITS = defaults().render.text
WHITE = (255, 255, 255)
SPEC = ROOT / "origin" / "urlparams" / "imgix" / "parameters.json"


def ink_box(image, background=WHITE, threshold=40):  # type: ignore[no-untyped-def]
    """(left, top, width, height) of everything that is not the background."""
    return image.find_trim(threshold=threshold, background=list(background))


def draw(image_w: int = 300, image_h: int = 120, **options: object):  # type: ignore[no-untyped-def]
    opts = TextOptions(**{"text": "Hello", "size": 30, **options})  # type: ignore[arg-type]
    return text.draw(flat(image_w, image_h, WHITE), opts, LIMITS)


@pytest.mark.parametrize(
    ("align", "check"),
    [
        (("top", "left"), lambda x, t, w, h: x >= 10 and x <= 14 and t >= 10 and t <= 16),
        (("bottom", "right"), lambda x, t, w, h: 286 <= x + w <= 290 and 106 <= t + h <= 110),
        (("middle", "center"), lambda x, t, w, h: abs((x + w / 2) - 150) <= 2 and abs((t + h / 2) - 60) <= 2),
    ],
)
def test_text_sits_where_the_alignment_puts_it(align, check) -> None:  # type: ignore[no-untyped-def]
    left, top, width, height = ink_box(draw(align=align, pad=10))
    assert width > 60 and 18 <= height <= 32  # "Hello" at 30 px: ~75 x 22 px of ink
    assert check(left, top, width, height), (left, top, width, height)


def test_default_is_bottom_right_ten_pixels_in() -> None:
    left, top, width, height = ink_box(draw())
    assert 286 <= left + width <= 290 and 106 <= top + height <= 110


def test_text_has_its_colour_inside_its_box_and_none_outside() -> None:
    image = draw(color=(255, 0, 0, 255), align=("top", "left"))
    left, top, width, height = ink_box(image)
    red = (image[0] > 200) & (image[1] < 60) & (image[2] < 60)
    inside = red.crop(left, top, width, height)
    assert inside.avg() * inside.width * inside.height / 255 > 150  # solid glyph pixels
    assert red.avg() * image.width * image.height == pytest.approx(inside.avg() * width * height)
    untouched = image.crop(0, top + height + 1, image.width, image.height - top - height - 1)
    assert untouched.min() == 255


def test_outline_and_shadow_draw_around_the_glyphs() -> None:
    plain = ink_box(draw(color=(255, 255, 255, 255), align=("middle", "center")), threshold=5)
    assert plain[2] <= 1  # white on white: nothing to see
    outlined = draw(color=(255, 255, 255, 255), line=2, line_color=(0, 0, 255, 255), align=("middle", "center"))
    left, top, width, height = ink_box(outlined)
    assert width > 60 and outlined.crop(left, top, width, height)[0].min() < 40  # blue outline
    shadowed = draw(color=(255, 255, 255, 255), shad=4, align=("middle", "center"))
    assert ink_box(shadowed, threshold=20)[2] > 60  # a grey shadow shows the word


def test_fit_max_shrinks_long_text_to_the_width() -> None:
    words = "A caption far too long for this image at two hundred pixels"
    left, top, width, height = ink_box(draw(text=words, size=200, fit="max", align=("top", "left")))
    assert left >= 10 and left + width <= 290
    assert width > 200  # it fills the width rather than collapsing
    assert height < 40  # and got far smaller than 200 px to do it


def test_without_fit_long_text_is_cut_to_the_box() -> None:
    words = "A caption far too long for this image at forty pixels, cut at its end"
    left, top, width, height = ink_box(draw(text=words, size=40, clip=("end", "ellipsis")))
    assert left >= 10 and left + width <= 290
    assert height > 25  # still 40 px text


def test_wrapped_text_stays_inside_txt_width() -> None:
    words = "several words that wrap onto more than one line"
    left, top, width, height = ink_box(draw(400, 300, text=words, size=24, width=150, align=("top", "left")))
    assert width <= 150 and height > 60  # three or more lines


def test_clipping_keeps_the_named_part() -> None:
    assert text._clipped("abcdefghij", 4, ("end",)) == "abcd"
    assert text._clipped("abcdefghij", 4, ("start", "ellipsis")) == "\u2026ghij"
    assert text._clipped("abcdefghij", 4, ("middle",)) == "abij"


def test_every_imgix_font_name_maps_to_a_shipped_face() -> None:
    names = json.loads(SPEC.read_text())["fontValues"]
    for name in names:
        face = text.font_face(name)
        assert Path(face.path).is_file(), name
    assert text.font_face("Courier New,Bold").file == "OriginMono-Bold.ttf"
    assert text.font_face("Georgia,Italic").file == "OriginSerif-Italic.ttf"
    assert text.font_face("sans-serif").file == "OriginSans-Regular.ttf"
    assert sum(p.stat().st_size for p in text.FONTS.glob("*.ttf")) < 400_000
    assert (text.FONTS / "LICENSE").is_file()


def test_fonts_render_the_same_wherever_they_are_installed() -> None:
    """Faces differ from each other (so `fontfile=` really loads ours), and a render is repeatable."""
    mono = ink_box(draw(text="iiiii", font="monospace", align=("top", "left")))
    sans = ink_box(draw(text="iiiii", font="sans-serif", align=("top", "left")))
    assert mono[2] > sans[2] * 1.5
    assert draw(font="serif").write_to_buffer(".png") == draw(font="serif").write_to_buffer(".png")


def test_markup_in_the_text_is_drawn_not_interpreted() -> None:
    raw = ink_box(draw(text="<b>&amp;</b>", align=("top", "left")))
    assert raw[2] > 120  # the eleven characters, not a bold ampersand


def test_limits_are_refused_by_name() -> None:
    with pytest.raises(ParamOutOfRange, match="txt may be at most 500"):
        text.check_text("txt", "x" * 501, LIMITS)
    with pytest.raises(ParamOutOfRange, match="at most 10 lines"):
        text.check_text("txt", "a\n" * 10 + "b", LIMITS)
    with pytest.raises(InvalidParam, match="U\\+1F600"):
        text.check_text("txt", "hi \U0001f600", LIMITS)
    assert text.check_text("txt", "Grüße, café — 10 €", LIMITS)


def test_huge_sizes_are_bounded_by_the_box() -> None:
    image = draw(800, 200, text="W" * 500, size=10_000)
    assert (image.width, image.height) == (800, 200)


# -- typesetting: txt-lead, txt-track, txt-lig ---------------------------------------------


def ink_rows(image, background=WHITE, threshold=40) -> list[bool]:  # type: ignore[no-untyped-def]
    """For each row of the image, whether it holds any ink."""
    differs = (image - list(background)).abs().bandor() > threshold
    _, rows = (differs / 255).project()
    return [rows.getpoint(0, y)[0] > 0 for y in range(rows.height)]


def line_gaps(image) -> list[int]:  # type: ignore[no-untyped-def]
    """Heights of the blank bands between runs of inked rows (between lines of text)."""
    rows = ink_rows(image)
    first, last = rows.index(True), len(rows) - 1 - rows[::-1].index(True)
    gaps, run = [], 0
    for inked in rows[first : last + 1]:
        if inked:
            if run:
                gaps.append(run)
            run = 0
        else:
            run += 1
    return gaps


@pytest.mark.parametrize("wrap", [None, 160], ids=["newline", "txt-width"])
def test_txt_lead_widens_the_gap_between_lines_by_its_pixels(wrap: int | None) -> None:
    """imgix: txt-lead sets the leading (line spacing). The blank band between two lines'
    ink grows by exactly the leading asked, whether lines come from newlines or wrapping."""
    words = "HHHH\nHHHH" if wrap is None else "HHHH HHHH"
    tight = line_gaps(draw(400, 300, text=words, width=wrap, align=("top", "left")))
    loose = line_gaps(draw(400, 300, text=words, width=wrap, lead=24, align=("top", "left")))
    assert len(tight) == len(loose) == 1, (tight, loose)  # two lines of ink, one gap
    assert loose[0] - tight[0] == 24


def test_txt_track_widens_a_line_by_its_pixels_per_letter() -> None:
    """imgix: txt-track sets the tracking (letter spacing): each of the n letters gets the
    extra pixels, so the ink of a line grows by (n - 1) x txt-track."""
    plain = ink_box(draw(400, 120, text="HHHHH", align=("top", "left")))
    spaced = ink_box(draw(400, 120, text="HHHHH", track=10, align=("top", "left")))
    tighter = ink_box(draw(400, 120, text="HHHHH", track=-3, align=("top", "left")))
    assert spaced[2] - plain[2] == pytest.approx(4 * 10, abs=2)
    assert plain[2] - tighter[2] == pytest.approx(4 * 3, abs=2)
    assert spaced[3] == plain[3]  # only the width changes


def test_txt_lig_switches_the_fonts_ligatures() -> None:
    """The shipped faces carry DejaVu's OpenType ligatures (`liga`: ff, fi, fl, ffi, ffl;
    `dlig` in the monospaced face). 0 turns the standard ones off, 1 (default) keeps them,
    2 adds the discretionary ones: the ink of the same text differs at each level."""

    def ink(lig: int, font: str = "sans-serif") -> bytes:
        image = draw(600, 140, text="ffi fl", size=80, lig=lig, font=font, align=("top", "left"))
        left, top, width, height = ink_box(image)
        return image.crop(left, top, width, height).write_to_buffer(".png")

    assert ink(0) != ink(1)  # a ligature glyph replaces f + f + i
    plain, standard = ink_box(draw(600, 140, text="ffi", size=80, lig=0)), ink_box(draw(600, 140, text="ffi", size=80))
    assert standard[2] < plain[2]  # the ligature is narrower than the three letters apart
    assert ink(2, "monospace") != ink(1, "monospace")  # discretionary ligatures of Origin Mono
