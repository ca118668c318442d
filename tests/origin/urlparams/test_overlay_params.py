"""Parsing the overlay families: every value lands in its spec field, inert ones are dropped."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qsl

import pytest

from origin.errors import InvalidParam, OriginError, ParamOutOfRange
from origin.params import OutputLimits, parse_query
from origin.settings import defaults
from origin.spec import TransformSpec, canonical
from origin.urlparams.text import TextLimits

DEFAULT_LIMITS = defaults().output


def parse(query: str, limits: OutputLimits = DEFAULT_LIMITS) -> TransformSpec:
    return parse_query(parse_qsl(query, keep_blank_values=True), limits)


def test_every_text_parameter_reaches_the_spec() -> None:
    spec = parse(
        "txt=Hi%0Athere&txt-font=georgia,bold&txt-size=30&txt-color=f00&txt-align=top,center&txt-pad=4"
        "&txt-width=120&txt-fit=max&txt-clip=start,ellipsis&txt-lig=2&txt-line=3&txt-line-color=00f"
        "&txt-shad=2.5&txt-lead=6&txt-track=-2"
    )
    assert spec.txt == "Hi\nthere" and spec.txt_font == "Georgia,Bold" and spec.txt_size == 30
    assert spec.txt_color == (255, 0, 0, 255) and spec.txt_align == ("center", "top") and spec.txt_pad == 4
    assert spec.txt_width == 120 and spec.txt_fit == "max" and spec.txt_clip == ("ellipsis", "start")
    assert spec.txt_lig == 2 and spec.txt_line == 3 and spec.txt_line_color == (0, 0, 255, 255)
    assert spec.txt_shad == 2.5 and spec.txt_lead == 6 and spec.txt_track == -2


def test_text_details_without_txt_are_inert() -> None:
    assert parse("txt-size=40&txt-color=f00") == TransformSpec()
    assert canonical(parse("txt=a&txt-line-color=00f")) == canonical(parse("txt=a"))  # no outline: no colour
    assert parse("txt=a&txt-clip=ellipsis").txt_clip == ("ellipsis", "end")


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("txt=a&txt-font=Comic%20Neue", InvalidParam),
        ("txt=a&txt-lig=3", InvalidParam),
        ("txt=a&txt-fit=min", InvalidParam),
        ("txt=a&txt-clip=start,end", InvalidParam),
        ("txt=a%07b", InvalidParam),
        ("txt=" + "x" * 501, ParamOutOfRange),
    ],
)
def test_text_values_are_refused_by_name(query: str, error: type[OriginError]) -> None:
    with pytest.raises(error):
        parse(query)


def test_text_size_is_clamped_to_the_setting() -> None:
    limits = replace(defaults().output, text=TextLimits(max_chars=500, max_lines=10, max_size=100))
    assert parse("txt=a&txt-size=4000", limits).txt_size == 100


def test_face_parameters() -> None:
    spec = parse("fit=facearea&w=100&h=100&faceindex=2&facepad=1.5")
    assert spec.fit == "facearea" and spec.faceindex == 2 and spec.facepad == 1.5
    assert parse("fit=crop&w=10&h=10&faceindex=2&facepad=3") == parse("fit=crop&w=10&h=10")  # need facearea
    assert parse("fm=json&faces=1").faces and not parse("fm=png&faces=1").faces
    assert parse("fit=crop&crop=faces,top&w=5&h=5").crop == ("faces", "top")
    assert parse("auto=enhance,redeye,format").auto == ("enhance", "format", "redeye")
    with pytest.raises(InvalidParam):
        parse("fm=json&faces=2")


def test_mark_details() -> None:
    spec = parse("mark=a.png&mark-w=0.25&mark-h=40&mark-fit=crop&mark-x=3&mark-y=4&mark-rot=-90&mark-tile=grid")
    assert (spec.mark_w, spec.mark_h, spec.mark_fit) == (0.25, 40.0, "crop")
    assert spec.mark_rot == 270 and spec.mark_tile == "grid"
    assert (spec.mark_x, spec.mark_y) == (None, None)  # a tiled mark has no position
    assert parse("mark=a.png&mark-x=3&mark-y=4").mark_x == 3
    assert parse("mark=a.png&mark-w=50&mark-scale=20").mark_scale is None  # mark-w wins
    assert parse("mark=a.png&mark-w=50&mark-fit=crop").mark_fit == "clip"  # fit needs both sides
    assert parse("mark-base=logos&mark=a.png").mark == "logos/a.png"
    for bad in ("mark=a.png&mark-w=8193", "mark=a.png&mark-w=0", "mark=a.png&mark-y=-1", "mark=a.png&mark-w=1.5"):
        with pytest.raises(ParamOutOfRange):
            parse(bad)
    with pytest.raises(InvalidParam, match="not a URL"):
        parse("mark=a.png&mark-base=https://cdn.example/")


def test_blend_parameters() -> None:
    spec = parse(
        "blend=layers/a.png&blend-mode=screen&blend-alpha=40&blend-align=bottom,right&blend-pad=3"
        "&blend-x=1&blend-y=2&blend-w=0.5&blend-h=30&blend-fit=crop&blend-crop=faces&blend-size=inherit"
    )
    assert spec.blend == "layers/a.png" and spec.blend_mode == "screen" and spec.blend_alpha == 40
    assert spec.blend_align == ("bottom", "right") and spec.blend_pad == 3 and (spec.blend_x, spec.blend_y) == (1, 2)
    assert (spec.blend_w, spec.blend_h, spec.blend_fit) == (0.5, 30.0, "crop")
    assert spec.blend_crop == ("faces",) and spec.blend_size == "inherit"
    colour = parse("blend=80ff0000&blend-w=20&blend-x=3")
    assert colour.blend is None and colour.blend_color == (255, 0, 0, 128) and colour.blend_w is None
    assert parse("blend-mode=screen&blend-alpha=5") == TransformSpec()  # no blend: inert
    with pytest.raises(ParamOutOfRange):
        parse("blend=f00&blend-alpha=101")
    with pytest.raises(InvalidParam):
        parse("blend=f00&blend-color=00f")
    with pytest.raises(InvalidParam):
        parse("blend=a.png&blend-color=00f")
