"""imgix's own parameter spec drives these checks: every parameter is handled (supported, or
refused with a reason), every alias and Base64 spelling is the canonical parameter, strict
ranges are enforced and suggested ones accepted, and the README and the tests cover all 127."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from urllib.parse import parse_qsl, quote

import pytest

from origin.errors import DuplicateParam, OriginError, ParamOutOfRange, UnsupportedParam
from origin.params import parse_query
from origin.settings import defaults
from origin.spec import canonical
from origin.urlparams import REFUSED, TABLE
from origin.urlparams.imgix import DOCUMENTED, SPEC_PATH

LIMITS = defaults().output

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "imgix" / "parameters.json"
SPEC = json.loads(FIXTURE.read_text())
PARAMETERS: dict = SPEC["parameters"]
ALIASES: dict = SPEC["aliases"]
SUPPORTED = sorted(TABLE)

# A value each supported parameter takes, and the context it needs to act (its dependencies).
SAMPLES: dict[str, tuple[str, str]] = {
    "w": ("300", ""),
    "h": ("200", ""),
    "dpr": ("2", "w=100"),
    "ar": ("16:9", "fit=crop&w=100"),
    "fit": ("crop", "w=10&h=10"),
    "crop": ("top", "fit=crop&w=10&h=10"),
    "fp-x": ("0.25", "fit=crop&crop=focalpoint"),
    "fp-y": ("0.25", "fit=crop&crop=focalpoint"),
    "fp-z": ("2", "fit=crop&crop=focalpoint"),
    "rect": ("1,2,3,4", ""),
    "pad": ("5", ""),
    "trim": ("auto", ""),
    "trim-color": ("f00", "trim=color"),
    "trim-tol": ("3", "trim=auto"),
    "rot": ("90", ""),
    "flip": ("h", ""),
    "bg": ("f00", ""),
    "fill": ("blur", "fit=fill&w=10&h=10"),
    "fill-color": ("f00", "fit=fill&w=10&h=10"),
    "fill-gradient-type": ("radial", "fit=fill&w=10&h=10&fill=gradient"),
    "fill-gradient-linear": ("f00,00f", "fit=fill&w=10&h=10&fill=gradient"),
    "fill-gradient-linear-direction": ("top,right", "fit=fill&w=10&h=10&fill=gradient"),
    "fill-gradient-radial": ("f00,00f", "fit=fill&w=10&h=10&fill=gradient&fill-gradient-type=radial"),
    "fill-gradient-radial-x": ("0.25", "fit=fill&w=10&h=10&fill=gradient&fill-gradient-type=radial"),
    "fill-gradient-radial-y": ("40", "fit=fill&w=10&h=10&fill=gradient&fill-gradient-type=radial"),
    "fill-gradient-radial-radius": ("5,20", "fit=fill&w=10&h=10&fill=gradient&fill-gradient-type=radial"),
    "fill-gradient-cs": ("oklab", "fit=fill&w=10&h=10&fill=gradient"),
    "fill-max": ("source", "fit=fillmax&w=10&h=10"),
    "blur": ("20", ""),
    "sharp": ("20", ""),
    "bri": ("20", ""),
    "con": ("20", ""),
    "sat": ("20", ""),
    "gam": ("20", ""),
    "hue": ("20", ""),
    "sepia": ("20", ""),
    "monochrome": ("f00", ""),
    "invert": ("true", ""),
    "fm": ("png", ""),
    "q": ("50", ""),
    "lossless": ("1", ""),
    "auto": ("format", ""),
    "mark": ("logos/a.png", ""),
    "mark-align": ("top,left", "mark=m.png"),
    "mark-alpha": ("50", "mark=m.png"),
    "mark-scale": ("50", "mark=m.png"),
    "mark-pad": ("9", "mark=m.png"),
    "dl": ("a file.jpg", ""),
    "min-w": ("50", "fit=crop&w=10&h=10"),
    "max-w": ("50", "fit=crop&w=10&h=10"),
    "min-h": ("50", "fit=crop&w=10&h=10"),
    "max-h": ("50", "fit=crop&w=10&h=10"),
    "orient": ("6", ""),
    "pad-top": ("5", ""),
    "pad-right": ("5", ""),
    "pad-bottom": ("5", ""),
    "pad-left": ("5", ""),
    "border": ("10,f00", ""),
    "border-top": ("5", "border=10,000"),
    "border-right": ("5", "border=10,000"),
    "border-bottom": ("5", "border=10,000"),
    "border-left": ("5", "border=10,000"),
    "border-radius": ("5", "border=10,000"),
    "border-radius-inner": ("1,2,3,4", "border=10,000"),
    "mask": ("ellipse", ""),
    "corner-radius": ("5", "mask=corners"),
    "mask-bg": ("f00", "mask=ellipse"),
    "trim-md": ("5", "trim=auto"),
    "trim-sd": ("5", "trim=auto"),
    "trim-pad": ("5", "trim=auto"),
    "transparency": ("grid", ""),
    "grid-colors": ("f00,00f", "transparency=grid"),
    "grid-size": ("8", "transparency=grid"),
    "exp": ("20", ""),
    "high": ("-20", ""),
    "shad": ("20", ""),
    "vib": ("20", ""),
    "usm": ("20", ""),
    "usmrad": ("5", "usm=20"),
    "px": ("5", ""),
    "htn": ("20", ""),
    "duotone": ("000,fff", ""),
    "duotone-alpha": ("50", "duotone=000,fff"),
    "nr": ("20", ""),
    "nrs": ("10", "nr=20"),
    "chromasub": ("444", ""),
    "colorquant": ("16", ""),
    "cs": ("srgb", ""),
    "dpi": ("300", ""),
    "palette": ("json", ""),
    "colors": ("4", "palette=json"),
    "prefix": ("x", "palette=css"),
    "fp-debug": ("1", "fit=crop&crop=focalpoint"),
    "ch": ("width,dpr", ""),
    # overlays: text, faces, watermark details, blending
    "txt": ("Hello, world", ""),
    "txt-font": ("Georgia,Bold", "txt=a"),
    "txt-size": ("30", "txt=a"),
    "txt-color": ("f00", "txt=a"),
    "txt-align": ("top,left", "txt=a"),
    "txt-pad": ("3", "txt=a"),
    "txt-width": ("100", "txt=a"),
    "txt-fit": ("max", "txt=a"),
    "txt-clip": ("start,ellipsis", "txt=a"),
    "txt-lig": ("0", "txt=a"),
    "txt-line": ("2", "txt=a"),
    "txt-line-color": ("00f", "txt=a&txt-line=2"),
    "txt-shad": ("3", "txt=a"),
    "txt-lead": ("4", "txt=a"),
    "txt-track": ("2", "txt=a"),
    "faces": ("1", "fm=json"),
    "faceindex": ("2", "fit=facearea&w=10&h=10"),
    "facepad": ("2", "fit=facearea&w=10&h=10"),
    "mark-w": ("0.5", "mark=m.png"),
    "mark-h": ("20", "mark=m.png"),
    "mark-fit": ("crop", "mark=m.png&mark-w=20&mark-h=20"),
    "mark-x": ("7", "mark=m.png"),
    "mark-y": ("7", "mark=m.png"),
    "mark-rot": ("45", "mark=m.png"),
    "mark-tile": ("grid", "mark=m.png"),
    "mark-base": ("logos/", "mark=m.png"),
    "blend": ("layers/a.png", ""),
    "blend-color": ("f00", ""),
    "blend-mode": ("multiply", "blend=f00"),
    "blend-alpha": ("50", "blend=f00"),
    "blend-align": ("bottom,right", "blend=l.png"),
    "blend-pad": ("5", "blend=l.png"),
    "blend-x": ("5", "blend=l.png"),
    "blend-y": ("5", "blend=l.png"),
    "blend-w": ("0.5", "blend=l.png"),
    "blend-h": ("20", "blend=l.png"),
    "blend-fit": ("crop", "blend=l.png&blend-w=20&blend-h=20"),
    "blend-crop": ("top", "blend=l.png&blend-fit=crop"),
    "blend-size": ("inherit", "blend=l.png"),
}


def parse(query: str):
    return parse_query(parse_qsl(query, keep_blank_values=True), LIMITS)


def key(query: str) -> str:
    return canonical(parse(query))


def join(*parts: str) -> str:
    return "&".join(p for p in parts if p)


def test_the_packaged_spec_is_the_fixture_with_its_licence():
    assert SPEC_PATH.read_bytes() == FIXTURE.read_bytes()
    for folder in (SPEC_PATH.parent, FIXTURE.parent):
        assert "BSD" in (folder / "LICENSE.md").read_text() or "Redistribution" in (folder / "LICENSE.md").read_text()
    assert len(PARAMETERS) == 127


def test_the_table_invents_nothing_and_refuses_with_reasons():
    assert set(TABLE) <= set(PARAMETERS) | DOCUMENTED
    assert not DOCUMENTED & set(PARAMETERS)
    assert set(REFUSED) <= set(PARAMETERS)
    assert not set(TABLE) & set(REFUSED)
    assert all(len(reason) > 20 for reason in REFUSED.values())


def test_every_supported_parameter_has_a_sample():
    assert set(SAMPLES) == set(TABLE)


@pytest.mark.parametrize("name", SUPPORTED)
def test_each_sample_changes_the_variant(name):
    value, context = SAMPLES[name]
    given = key(join(context, f"{name}={quote(value)}"))
    if name != "trim-color":  # trim=color alone is refused: it needs trim-color
        assert given != key(context)


@pytest.mark.parametrize("name", sorted(set(PARAMETERS) - set(TABLE) - {"expires"}))
def test_every_other_parameter_is_a_400_naming_it(name):
    with pytest.raises(UnsupportedParam) as info:
        parse(f"{name}=1")
    assert info.value.status == 400 and info.value.code == "unsupported_param"
    assert name in info.value.message


@pytest.mark.parametrize(("alias", "name"), sorted(ALIASES.items()))
def test_every_alias_is_its_parameter(alias, name):
    if name not in TABLE:
        with pytest.raises(UnsupportedParam, match=re.escape(name)):
            parse(f"{alias}=1")
        return
    value, context = SAMPLES[name]
    assert key(join(context, f"{alias}={quote(value)}")) == key(join(context, f"{name}={quote(value)}"))


def b64(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


@pytest.mark.parametrize("name", SUPPORTED)
def test_every_base64_variant_is_its_parameter(name):
    value, context = SAMPLES[name]
    plain = key(join(context, f"{name}={quote(value)}"))
    if PARAMETERS.get(name, {}).get("disallow_base64"):
        with pytest.raises(OriginError):
            parse(join(context, f"{name}64={b64(value)}"))
        return
    assert key(join(context, f"{name}64={b64(value)}")) == plain
    padded = base64.urlsafe_b64encode(value.encode()).decode()
    assert key(join(context, f"{name}64={quote(padded)}")) == plain


def test_base64_of_an_alias_and_of_text_with_any_character():
    assert key("m64=" + b64("logos/brand mark+é.png")) == key("mark=" + quote("logos/brand mark+é.png"))
    assert key("dl64=" + b64("rapport été?&.pdf")) == key("dl=" + quote("rapport été?&.pdf"))


@pytest.mark.parametrize("bad", ["!!!", "a", "_w8", "gA"])
def test_bad_base64_is_a_400_naming_the_parameter(bad):
    with pytest.raises(OriginError, match="dl64"):
        parse(f"dl64={bad}")


@pytest.mark.parametrize(
    "query",
    ["w=1&width=2", "width=1&w=1", "w=1&w64=MQ", "mark=a.png&m=b.png", "m=a.png&mark64=YS5wbmc", "f=crop&fit=crop"],
)
def test_one_parameter_under_two_spellings_is_a_duplicate(query):
    with pytest.raises(DuplicateParam):
        parse(query)


def _strict_edges(name: str) -> tuple[float | None, float | None]:
    """The union of the strict ranges of a parameter's numeric forms."""
    lows, highs = [], []
    for form in PARAMETERS[name]["expects"]:
        if form.get("type") not in ("integer", "number", "unit_scalar"):
            continue
        strict = form.get("strict_range")
        if strict is None:
            return None, None
        lows.append(strict.get("min"))
        highs.append(strict.get("max"))
    low = None if not lows or None in lows else min(lows)
    high = None if not highs or None in highs else max(highs)
    return low, high


SPECIFIED = [n for n in SUPPORTED if n in PARAMETERS]
STRICT = [(n, *_strict_edges(n)) for n in SPECIFIED if any(e is not None for e in _strict_edges(n))]


@pytest.mark.parametrize(("name", "low", "high"), STRICT)
def test_every_strict_range_is_refused_past_its_edge(name, low, high):
    value, context = SAMPLES[name]
    if high is not None:
        for past in (high + 1, high + 0.5 if PARAMETERS[name]["expects"][0]["type"] != "integer" else high + 1):
            with pytest.raises(ParamOutOfRange) as info:
                parse(join(context, f"{name}={past:g}"))
            assert f"{high:g}" in info.value.message
        parse(join(context, f"{name}={high:g}"))
    if low is not None:
        with pytest.raises(OriginError):
            parse(join(context, f"{name}={low - 1:g}"))


def _suggested(name: str) -> list[float]:
    past = []
    for form in PARAMETERS[name]["expects"]:
        if form.get("type") in ("integer", "number") and "suggested_range" in form and "strict_range" not in form:
            rng = form["suggested_range"]
            past += [rng["min"] - 1] if "min" in rng else []
            past += [rng["max"] + 1] if "max" in rng else []
    return past


SUGGESTED = [(n, v) for n in SPECIFIED for v in _suggested(n)]


@pytest.mark.parametrize(("name", "value"), SUGGESTED)
def test_past_every_suggested_range_is_accepted(name, value):
    _, context = SAMPLES[name]
    parse(join(context, f"{name}={value:g}"))


def _url_api_rows() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The URL API", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z0-9-]+)` \|.*$", section, re.M)}


def test_the_readme_has_one_row_per_parameter_saying_what_happens():
    rows = _url_api_rows()
    assert set(PARAMETERS) <= set(rows), sorted(set(PARAMETERS) - set(rows))
    for name in PARAMETERS:
        cells = [c.strip() for c in rows[name].strip("|").split("|")]
        assert cells[2] in ("supported", "mapped", "refused", "not yet"), rows[name]
        assert cells[3], rows[name]
        if name in REFUSED:
            assert cells[2] == "refused"
        elif name in TABLE:
            assert cells[2] in ("supported", "mapped")
        for alias, target in ALIASES.items():
            if target == name:
                assert f"`{alias}`" in cells[1], (name, alias)


def test_every_parameter_is_in_some_other_test_url():
    """Each name must appear as `name=` in a query of a test other than this one (a URL, a
    parse call or a query list), so no parameter goes untested."""
    texts = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py") if p.name != Path(__file__).name)
    missing = [n for n in PARAMETERS if not re.search(rf"[?&\"'(]{re.escape(n)}=", texts)]
    assert not missing, missing
