"""The frozen spec and its canonical string: the core of every cache key."""

from __future__ import annotations

import dataclasses

import pytest

from origin.spec import TransformSpec, canonical, format_color, format_number, param_name


@pytest.mark.parametrize(
    ("value", "text"),
    [(100, "100"), (100.0, "100"), (0.5, "0.5"), (1 / 3, "0.333333"), (1e3, "1000"), (2.25, "2.25"), (0.0000004, "0")],
)
def test_numbers_have_one_spelling(value, text):
    assert format_number(value) == text


def test_colours_are_lower_case_argb():
    assert format_color((255, 0, 16, 128)) == "80ff0010"
    assert format_color((0, 0, 0, 255)) == "ff000000"


def test_param_names():
    assert param_name("fp_x") == "fp-x"
    assert param_name("mark_align") == "mark-align"
    assert param_name("w") == "w"


def test_default_spec_is_empty_and_needs_no_render():
    assert canonical(TransformSpec()) == ""
    assert not TransformSpec().needs_render
    assert not TransformSpec(dl="a.jpg").needs_render
    assert TransformSpec(w=10).needs_render


def test_spec_is_frozen_and_hashable():
    spec = TransformSpec(w=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.w = 20  # type: ignore[misc]
    assert hash(spec) == hash(TransformSpec(w=10.0))


def test_canonical_sorts_and_formats_every_kind_of_field():
    spec = TransformSpec(
        w=0.5,
        dpr=2,
        ar=16 / 9,
        fit="crop",
        crop=("left", "top"),
        rect=(1, 2, 3, 4),
        invert=True,
        bg=(1, 2, 3, 4),
        auto=("compress", "format"),
        mark="logos/a b.png",
        dl="x&y=z.jpg",
    )
    assert canonical(spec) == (
        "ar=1.777778:1&auto=compress,format&bg=04010203&crop=left,top&dl=x%26y%3Dz.jpg&dpr=2"
        "&fit=crop&invert=1&mark=logos%2Fa%20b.png&rect=1,2,3,4&w=0.5"
    )


def test_defaults_are_dropped_field_by_field():
    for field in dataclasses.fields(TransformSpec):
        assert canonical(dataclasses.replace(TransformSpec(), **{field.name: field.default})) == ""


def test_mark_align_default_is_dropped():
    assert canonical(TransformSpec(mark_align=("bottom", "right"))) == ""
    assert canonical(TransformSpec(mark_align=("left", "top"))) == "mark-align=left,top"


def test_forget_puts_only_the_named_fields_back_at_their_defaults():
    spec = TransformSpec(w=100, fit="crop", crop=("top",), mark_align=("left", "top"))
    assert spec.forget("crop", "mark_align") == TransformSpec(w=100, fit="crop")
    assert spec.forget() == spec
