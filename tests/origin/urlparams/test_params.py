"""Query string -> TransformSpec: one canonical spelling per variant, and every refusal named."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from origin.errors import DuplicateParam, InvalidKey, InvalidParam, OriginError, ParamOutOfRange, UnknownParam
from origin.params import OutputLimits, parse_query
from origin.settings import defaults
from origin.spec import TransformSpec, canonical

LIMITS = defaults().output

DEFAULT_LIMITS = LIMITS


def parse(query: str, limits: OutputLimits = DEFAULT_LIMITS) -> TransformSpec:
    return parse_query(parse_qsl(query, keep_blank_values=True), limits)


def key(query: str) -> str:
    return canonical(parse(query))


# -- canonical form ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("w=100", "w=100.0"),
        ("w=100", "w=99.5"),
        ("w=100&h=50&fit=crop", "fit=crop&h=50&w=100"),
        ("w=100", "w=100&ixlib=js-3.8.0"),
        ("w=100", "ixlib=php-1&w=100&ixlib=rb-2"),
        ("w=8192", "w=4096"),
        ("h=8000", "h=4096"),
        ("w=8192&h=4096", "w=4096&h=2048"),
        ("w=1000&dpr=2", "w=2000"),
        ("w=100&h=50&dpr=1.5", "w=150&h=75"),
        ("w=800&dpr=5", "w=4000"),
        ("w=2000&dpr=4", "w=4096"),
        ("dpr=2", ""),
        ("w=0.5&h=8000", "w=0.5&h=4096"),
        ("crop=top,left&fit=crop&w=9&h=9", "crop=left,top&fit=crop&w=9&h=9"),
        ("crop=top,top,left&fit=crop&w=9&h=9", "crop=left,top&fit=crop&w=9&h=9"),
        ("ar=16:9&fit=crop&w=10", "ar=32:18&fit=crop&w=10"),
        ("mark=a.png&mark-align=right,bottom", "mark=a.png"),
        ("mark=a.png&mark-alpha=100&mark-pad=5", "mark=a.png"),
        ("bg=f00", "bg=ffff0000"),
        ("bg=#ff0000", "bg=F00"),
        ("bg=8f00", "bg=88ff0000"),
        ("hue=-90", "hue=270"),
        ("invert=true", "invert=1"),
        ("invert=0", ""),
        ("fit=clip&fp-x=0.5&dpr=1&pad=0&rot=0&blur=0", ""),
        ("trim-tol=10&mark-scale=50", "mark-scale=50"),
        ("nrs=10", ""),  # nrs acts only beside a positive nr
        ("nr=0&nrs=10", ""),
        ("nr=-50", ""),  # nr <= 0 does nothing
        ("nr=30&nrs=20", "nr=30"),
        ("fit=fill&fill=solid", "fit=fill"),  # defaults written out are the same variant
    ],
)
def test_same_meaning_same_canonical_string(a, b):
    assert key(a) == key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("w=100", "w=101"),
        ("w=0.5", "w=1"),
        ("fit=crop&w=9", "fit=clip&w=9"),
        ("q=75", ""),
        ("w=1000&dpr=2", "w=1000"),
        ("nr=30&nrs=10", "nr=30"),
    ],
)
def test_different_meaning_different_canonical_string(a, b):
    assert key(a) != key(b)


def test_canonical_is_sorted_and_drops_defaults():
    assert key("w=100&fit=crop&h=50&crop=top&q=80&pad=0") == "crop=top&fit=crop&h=50&q=80&w=100"
    assert key("") == ""


def test_canonical_numbers_have_one_spelling():
    assert key("w=0.5") == "w=0.5"
    assert key("w=0.3333333") == "w=0.333333"
    assert key("fp-x=0.25&fit=crop&crop=focalpoint") == "crop=focalpoint&fit=crop&fp-x=0.25"
    assert key("w=99.5") == "w=100"


def test_canonical_colours_are_argb_hex():
    assert key("bg=0f0") == "bg=ff00ff00"
    assert key("bg=80ABCDEF") == "bg=80abcdef"
    assert key("fill-color=1234&fill=solid&fit=fill") == "fill-color=11223344&fit=fill"


def test_canonical_aspect_ratio_is_a_parseable_ratio():
    assert key("fit=crop&w=10&ar=16:9") == "ar=1.777778:1&fit=crop&w=10"
    assert key("fit=crop&ar=2:1") == "ar=2:1&fit=crop"


def test_dl_and_mark_are_quoted_and_survive():
    spec = parse("dl=my%20file%26%2B.jpg&mark=logos/brand%20mark.png")
    assert spec.dl == "my file&+.jpg"
    assert spec.mark == "logos/brand mark.png"
    assert parse(canonical(spec)) == spec


def test_sizes():
    assert parse("w=100").w == 100.0
    assert parse("w=100.4").w == 100.0
    assert parse("w=0.5").w == 0.5
    assert parse("w=0.9999999").w == 0.999999
    assert parse("h=1").h == 1.0
    assert parse("w=1").w == 1.0


def test_dpr_beside_a_pixel_size_is_folded_away():
    spec = parse("w=300&h=200&dpr=2")
    assert (spec.w, spec.h, spec.dpr) == (600.0, 400.0, 1.0)


@pytest.mark.parametrize(
    ("scaled", "folded"),
    [
        ("w=100&dpr=2&txt=hi&txt-size=20", "w=200&txt=hi&txt-size=40&txt-pad=20"),
        ("w=100&dpr=2&txt=hi", "w=200&txt=hi&txt-size=24&txt-pad=20"),
        (
            "w=100&dpr=1.5&txt=hi&txt-line=2&txt-shad=3&txt-lead=4&txt-track=2&txt-width=80",
            "w=150&txt=hi&txt-size=18&txt-pad=15&txt-line=3&txt-shad=4.5&txt-lead=6&txt-track=3&txt-width=120",
        ),
        ("w=100&dpr=2&pad=5&pad-left=3", "w=200&pad=10&pad-left=6"),
        (
            "w=100&dpr=2&border=3,000&border-top=1&border-radius=4&border-radius-inner=1,2,3,4",
            "w=200&border=6,000&border-top=2&border-radius=8&border-radius-inner=2,4,6,8",
        ),
        (
            "w=100&dpr=2&mark=a.png&mark-w=20&mark-h=0.5&mark-x=3",
            "w=200&mark=a.png&mark-w=40&mark-h=0.5&mark-x=6&mark-pad=10",
        ),
        (
            "w=100&dpr=2&blend=b.png&blend-w=30&blend-pad=2&blend-y=1",
            "w=200&blend=b.png&blend-w=60&blend-pad=4&blend-y=2",
        ),
        ("w=100&dpr=2&mask=corners&corner-radius=5", "w=200&mask=corners&corner-radius=10"),
        ("w=100&dpr=2&mask=corners", "w=200&mask=corners&corner-radius=20"),
        ("mask=corners", "mask=corners&corner-radius=10"),
        ("w=100&dpr=2&transparency=grid", "w=200&transparency=grid&grid-size=8"),
        ("w=100&dpr=2&txt=hi&txt-line=40", "w=200&txt=hi&txt-size=24&txt-pad=20&txt-line=64"),  # the 1x cap holds
        ("fit=crop&w=100&h=50&dpr=2&max-w=80&min-h=60", "fit=crop&w=200&h=100&max-w=160&min-h=120"),
        ("dpr=2&txt=hi&pad=5", "txt=hi&pad=5"),  # imgix: dpr needs w or h
    ],
)
def test_dpr_scales_every_length_in_output_pixels(scaled: str, folded: str) -> None:
    """imgix's lengths are CSS pixels: at dpr=2 text, paddings, borders, overlay boxes and
    offsets are twice as many output pixels, so a 2x URL is the 1x one drawn denser."""
    assert canonical(parse(scaled)) == canonical(parse(folded))


def test_dpr_beside_a_share_is_kept_and_capped():
    spec = parse("w=0.5&h=200&dpr=4.5", replace(defaults().output, max_dpr=4.0))
    assert (spec.w, spec.h, spec.dpr) == (0.5, 200.0, 4.0)


def test_limits_come_from_settings():
    limits = replace(defaults().output, max_side=1000, max_dpr=2.0)
    assert parse("w=5000&h=2500", limits).w == 1000.0
    assert parse("w=5000&h=2500", limits).h == 500.0
    assert parse("w=400&dpr=3", limits).w == 800.0


def test_fields_by_name():
    spec = parse(
        "fit=crop&crop=focalpoint&fp-x=0.2&fp-y=0.8&fp-z=2&rect=1,2,3,4&pad=7&trim=color&trim-color=fff"
        "&trim-tol=3&rot=270&flip=hv&bg=000&fill=blur&blur=20&sharp=5&bri=-10&con=10&sat=-100&gam=5"
        "&sepia=50&monochrome=80ff0000&invert=1&fm=pjpg&q=60&lossless=1&auto=compress,format"
        "&mark=m.png&mark-align=top,center&mark-alpha=40&mark-scale=25&mark-pad=0&dl=x.jpg"
    )
    assert spec.fit == "crop" and spec.crop == ("focalpoint",)
    assert (spec.fp_x, spec.fp_y, spec.fp_z) == (0.2, 0.8, 2.0)
    assert spec.rect == (1, 2, 3, 4) and spec.pad == 7
    assert spec.trim == "color" and spec.trim_color == (255, 255, 255, 255) and spec.trim_tol == 3
    assert spec.rot == 270 and spec.flip == "hv"
    assert spec.bg == (0, 0, 0, 255) and spec.fill is None  # fill acts only with fit=fill
    assert (spec.blur, spec.sharp, spec.bri, spec.con, spec.sat, spec.gam, spec.sepia) == (20, 5, -10, 10, -100, 5, 50)
    assert spec.monochrome == (255, 0, 0, 0x80) and spec.invert is True
    assert (spec.fm, spec.q, spec.lossless, spec.auto) == ("pjpg", 60, True, ("compress", "format"))
    assert spec.mark == "m.png" and spec.mark_align == ("center", "top")
    assert (spec.mark_alpha, spec.mark_scale, spec.mark_pad) == (40, 25, 0)
    assert spec.dl == "x.jpg"


@pytest.mark.parametrize(
    ("raw", "rgba"),
    [
        ("f00", (255, 0, 0, 255)),
        ("8f00", (255, 0, 0, 0x88)),
        ("00ff00", (0, 255, 0, 255)),
        ("#0000ff", (0, 0, 255, 255)),
        ("000000ff", (0, 0, 255, 0)),
        ("80112233", (0x11, 0x22, 0x33, 0x80)),
        ("AbCdEf", (0xAB, 0xCD, 0xEF, 255)),
    ],
)
def test_colours_are_rgb_or_argb(raw, rgba):
    assert parse(f"bg={raw}").bg == rgba


def test_needs_render():
    assert not parse("").needs_render
    assert not parse("dl=a.jpg").needs_render
    assert not parse("ixlib=js&dpr=2").needs_render
    assert parse("w=10").needs_render
    assert parse("fm=png").needs_render
    assert parse("fm=json").is_json


# -- errors ------------------------------------------------------------------------------


def refused(query: str, kind: type[OriginError] = OriginError) -> OriginError:
    """The error parsing `query` raises; given a `kind`, that kind with its code and a 400."""
    with pytest.raises(kind) as info:
        parse(query)
    if kind is not OriginError:
        assert (info.value.code, info.value.status) == (kind.code, 400), (query, info.value)
    return info.value


@pytest.mark.parametrize(
    "query", ["wdth=100", "W=100", "fp_x=0.5", "preset=x", "widths=1", "ixlib2=x", "s=1", "w6=1", "auto64=Zm9ybWF0"]
)
def test_unknown_parameter(query):
    assert repr(query.split("=")[0]) in refused(query, UnknownParam).message


@pytest.mark.parametrize("query", ["w=100&w=200", "w=1&w=1", "fit=crop&fit=crop", "bg=fff&bg=000"])
def test_duplicate_parameter(query):
    assert query.split("=")[0] in refused(query, DuplicateParam).message


INVALID = [
    "w=0",
    "w=-1",
    "w=abc",
    "w=1e3",
    "w=00100",
    "w=\u0661\u0660\u0660",
    "w=\uff11\uff10\uff10",
    "w=",
    "w= 100",
    "w=+100",
    "w=0x10",
    "w=.5",
    "w=1.",
    "w=inf",
    "w=nan",
    "w=0.0000001",
    "w=100px",
    "h=0",
    "h=-0.5",
    "q=abc",
    "q=7.5",
    "q=075",
    "dpr=two",
    "fm=svg",
    "fm=tiff",
    "fm=../x",
    "fm=JPG",
    "fm=",
    "fm=jpeg",
    "fit=cover",
    "fit=",
    "crop=middle",
    "crop=top,bottom",
    "crop=left,right",
    "crop=entropy,edges",
    "crop=",
    "crop=top,",
    "flip=x",
    "trim=yes",
    "fill=gen",
    "invert=yes",
    "lossless=2",
    "bg=reddish",
    "bg=imgixorange",
    "bg=12",
    "bg=12345",
    "bg=1234567",
    "bg=fffffffff",
    "bg=ggg",
    "bg=#",
    "fill-color=-12",
    "monochrome=\u0661\u0662\u0663",
    "ar=16",
    "ar=16:0",
    "ar=0:9",
    "ar=a:b",
    "ar=-16:9",
    "ar=16:9:1",
    "ar=16/9",
    "rect=1,2,3",
    "rect=1,2,3,4,5",
    "rect=0,0,0,10",
    "rect=0,0,10,0",
    "rect=a,b,c,d",
    "rect=1.5,0,1,1",
    "rot=a",
    "rot=1e3",
    "rot=" + "9" * 400,
    "trim=color",
    "mark-align=top,bottom",
    "mark-align=left,right,top",
    "mark-align=middle,top",
    "mark-align=up",
    "dl=",
    "dl=a\nb",
    "dl=a\x00b",
    "dl=a\x85b",
]


@pytest.mark.parametrize("query", INVALID)
def test_invalid_value(query):
    assert query.split("=")[0] in refused(query, InvalidParam).message


OUT_OF_RANGE = [
    "dpr=0",
    "dpr=0.0000001",
    "dpr=5.01",
    "dpr=1001",
    "w=8193",
    "h=10000",
    "fp-x=1.5",
    "fp-y=-0.1",
    "fp-z=0.5",
    "fp-z=101",
    "ar=1:101",
    "ar=101:1",
    "rect=1000001,0,1,1",
    "rect=-1,0,10,10",
    "dpr=" + "9" * 400,
    "ar=" + "9" * 400 + ":1",
    "w=" + "9" * 30,
]


@pytest.mark.parametrize("query", OUT_OF_RANGE, ids=[q[:24] for q in OUT_OF_RANGE])
def test_out_of_range(query):
    refused(query, ParamOutOfRange)


@pytest.mark.parametrize("digits", [30, 400, 5000])
def test_absurd_sizes_are_refused_without_crashing(digits):
    for query in ("w=" + "9" * digits, "w=0.5&h=" + "9" * digits):
        assert isinstance(refused(query), ParamOutOfRange)


SUGGESTED = [
    ("q=0", "q=1"),
    ("q=101", "q=100"),
    ("q=" + "9" * 5000, "q=100"),
    ("pad=2049", "pad=2048"),
    ("pad=" + "9" * 30, "pad=2048"),
    ("blur=2001", "blur=2000"),
    ("sharp=101", "sharp=100"),
    ("bri=101", "bri=100"),
    ("con=-101", "con=-100"),
    ("sat=200", "sat=100"),
    ("gam=-101", "gam=-100"),
    ("hue=360", "hue=0"),
    ("sepia=101", "sepia=100"),
    ("mark=m.png&mark-alpha=101", "mark=m.png"),
    ("mark=m.png&mark-scale=0", "mark=m.png&mark-scale=1"),
    ("mark=m.png&mark-scale=101", "mark=m.png&mark-scale=100"),
    ("rot=360", "rot=0"),
    ("rot=-90", "rot=270"),
    ("rot=405.004", "rot=45"),
    ("rot=-0.5", "rot=359.5"),
    ("trim=auto&trim-tol=256", "trim=auto&trim-tol=255"),
]


@pytest.mark.parametrize(("given", "edge"), SUGGESTED, ids=[q[:24] for q, _ in SUGGESTED])
def test_past_a_suggested_range_is_accepted_and_clamped_to_it(given, edge):
    assert key(given) == key(edge)


@pytest.mark.parametrize("mark", ["../x.png", "/abs.png", "_/token", "a//b.png", "a\\b.png"])
def test_mark_must_be_a_valid_key(mark):
    with pytest.raises(InvalidKey):
        parse_query([("mark", mark)], LIMITS)


def test_errors_do_not_echo_long_input():
    error = refused("w=" + "x" * 10_000)
    assert len(error.message) < 200
    error = refused("x" * 10_000 + "=1")
    assert len(error.message) < 200


def test_colours_accepted_with_every_length():
    for raw in ("fff", "ffff", "ffffff", "ffffffff"):
        assert parse(f"trim=color&trim-color={raw}").trim_color == (255, 255, 255, 255)


def test_crop_may_combine_one_side_per_axis_and_a_smart_mode():
    assert parse("fit=crop&crop=focalpoint,top").crop == ("focalpoint", "top")
    assert parse("fit=crop&crop=bottom,right").crop == ("bottom", "right")


# -- property: canonical() is parse_query()'s inverse on its own output --------------------

_dec = st.decimals(min_value=0, max_value=1, places=7, allow_nan=False).map(lambda d: format(d, "f"))
_hex = st.text("0123456789abcdefABCDEF", min_size=1, max_size=8).filter(lambda t: len(t) in (3, 4, 6, 8))
_int = lambda lo, hi: st.integers(lo, hi).map(str)  # noqa: E731
_words = lambda options: st.sets(st.sampled_from(options), min_size=1).map(",".join)  # noqa: E731
_name = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30)
_key_segment = st.text("abcXYZ019-_. é+&=%", min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))

VALUES = {
    "w": st.one_of(_int(1, 8192), st.floats(0.001, 0.999).map(lambda f: f"{f:.4f}")),
    "h": st.one_of(_int(1, 8192), st.floats(0.001, 8192).map(lambda f: f"{f:.3f}")),
    "dpr": st.floats(0.01, 5).map(lambda f: f"{f:.3f}"),
    "ar": st.tuples(st.integers(1, 50), st.integers(1, 50)).map(lambda t: f"{t[0]}:{t[1]}"),
    "fit": st.sampled_from(["clip", "max", "min", "crop", "fill", "fillmax", "scale", "clamp"]),
    "crop": st.tuples(
        st.sampled_from(["", "top", "bottom"]),
        st.sampled_from(["", "left", "right"]),
        st.sampled_from(["", "entropy", "edges", "focalpoint"]),
    ).map(lambda t: ",".join(w for w in t if w) or "top"),
    "fp-x": _dec,
    "fp-y": _dec,
    "fp-z": st.floats(1, 100).map(lambda f: f"{f:.5f}"),
    "rect": st.tuples(*[st.integers(0, 5000)] * 2, *[st.integers(1, 5000)] * 2).map(lambda t: ",".join(map(str, t))),
    "pad": _int(0, 2048),
    "trim": st.just("auto"),
    "trim-tol": _int(0, 255),
    "rot": st.sampled_from(["0", "90", "180", "270"]),
    "flip": st.sampled_from(["h", "v", "hv"]),
    "bg": _hex,
    "fill": st.sampled_from(["solid", "blur"]),
    "fill-color": _hex,
    "blur": _int(0, 2000),
    "sharp": _int(0, 100),
    "bri": _int(-100, 100),
    "con": _int(-100, 100),
    "sat": _int(-100, 100),
    "gam": _int(-100, 100),
    "hue": _int(-359, 359),
    "sepia": _int(0, 100),
    "monochrome": _hex,
    "invert": st.sampled_from(["0", "1", "true", "false"]),
    "fm": st.sampled_from(["jpg", "pjpg", "png", "webp", "avif", "gif", "json"]),
    "q": _int(1, 100),
    "lossless": st.sampled_from(["0", "1"]),
    "auto": _words(["format", "compress"]),
    "mark": st.lists(_key_segment, min_size=1, max_size=3).map("/".join).filter(lambda k: not k.startswith("_")),
    "mark-align": st.tuples(
        st.sampled_from(["top", "middle", "bottom"]), st.sampled_from(["left", "center", "right"])
    ).map(",".join),
    "mark-alpha": _int(0, 100),
    "mark-scale": _int(1, 100),
    "mark-pad": _int(0, 2048),
    "dl": _name,
}


@st.composite
def queries(draw):
    names = draw(st.sets(st.sampled_from(sorted(VALUES)), max_size=12))
    pairs = [(name, draw(VALUES[name])) for name in sorted(names)]
    if draw(st.booleans()):
        pairs.append(("trim", "color"))
        pairs.append(("trim-color", draw(_hex)))
        pairs = [p for p in pairs if p[0] != "trim" or p[1] == "color"]
    return draw(st.permutations(pairs))


@settings(max_examples=300, deadline=None)
@given(queries())
def test_canonical_round_trips(pairs):
    spec = parse_query(pairs, LIMITS)
    text = canonical(spec)
    again = parse_query(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)), LIMITS)
    assert again == spec
    assert canonical(again) == text


@settings(max_examples=100, deadline=None)
@given(queries(), st.randoms())
def test_order_never_matters(pairs, rnd):
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    assert canonical(parse_query(shuffled, LIMITS)) == canonical(parse_query(pairs, LIMITS))


def test_inert_parameters_do_not_mint_variants():
    from origin.spec import canonical

    assert canonical(parse_query([("w", "100"), ("ar", "16:9")], LIMITS)) == "w=100"
    assert canonical(parse_query([("w", "100"), ("fp-x", "0.2"), ("fp-z", "3")], LIMITS)) == "w=100"
    kept = canonical(parse_query([("w", "100"), ("fit", "crop"), ("crop", "focalpoint"), ("fp-x", "0.2")], LIMITS))
    assert "fp-x=0.2" in kept


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("page=2", "PDF"),
        ("pdf-annotation=false", "PDF"),
        ("annotation=false", "PDF"),
        ("fm=mp4", "video"),
        ("fm=webm", "video"),
        ("fm=jp2", "cannot write JPEG 2000"),
        ("fm=jxr", "cannot write JPEG XR"),
        ("auto=true", "no meaning"),
    ],
)
def test_out_of_scope_is_a_400_saying_why(query, reason):
    error = refused(query)
    assert error.code == "unsupported_param" and error.status == 400
    assert reason in error.message


@pytest.mark.parametrize(
    "query", ["mark=https://example.com/logo.png", "mark=//cdn.example.com/x.png", "m=http://x/y.png"]
)
def test_a_mark_is_a_storage_key_not_a_url(query):
    error = refused(query)
    assert error.status == 400 and "mark must be a storage key, not a URL" in error.message
