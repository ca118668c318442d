"""Face detection (the `faces` extra, installed by the `test` extra): the real detector on a real photo."""

from __future__ import annotations

import sys

import pytest
import pyvips

from origin.errors import FacesUnavailable
from origin.render import faces
from origin.render.faces import Face
from tests import FIXTURES
from tests.images import flat, quadrants

PHOTO = FIXTURES / "faces" / "astronaut.jpg"
HER_FACE = Face(51, 43, 60, 60)
"""Read off the photograph by eye (see the fixture's README)."""


def iou(a: Face, b: Face) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    return inter / (a.w * a.h + b.w * b.h - inter)


def photo() -> pyvips.Image:
    return pyvips.Image.new_from_file(str(PHOTO))


def two_faces() -> tuple[pyvips.Image, Face, Face]:
    """The photo beside a mirrored copy at 80% on a grey canvas: two faces of two sizes."""
    small = photo().fliphor().resize(0.8)
    canvas = flat(480, 200, (90, 90, 90)).insert(photo(), 10, 20).insert(small, 260, 40)
    mirrored = Face(260 + round((192 - 51 - 60) * 0.8), 40 + round(43 * 0.8), 48, 48)
    return canvas, Face(10 + 51, 20 + 43, 60, 60), mirrored


def test_the_detector_finds_her_face() -> None:
    found = faces.detect(photo())
    assert len(found) == 1
    assert iou(found[0], HER_FACE) > 0.5, found


def test_faces_come_largest_first_in_the_images_coordinates() -> None:
    image, big, small = two_faces()
    found = faces.detect(image)
    assert len(found) == 2, found
    assert iou(found[0], big) > 0.5 and iou(found[1], small) > 0.4, found
    large = faces.detect(image.resize(3))  # past DETECT_SIDE: found on a reduced copy, mapped back
    assert iou(large[0], big.scaled(3, 3)) > 0.5


def test_no_faces_in_flat_colours() -> None:
    assert faces.detect(quadrants(300, 200)) == []


def test_face_area_grows_the_face_by_facepad_and_takes_the_ratio() -> None:
    face = Face(100, 100, 50, 50)
    assert faces.face_area(face, 1.0, None, 1000, 1000) == (75, 75, 100, 100)
    x, y, w, h = faces.face_area(Face(500, 500, 50, 50), 2.0, 2.0, 1000, 1000)
    assert (w, h) == (300, 150) and x + w / 2 == 525 and y + h / 2 == 525
    assert faces.face_area(Face(0, 0, 50, 50), 1.0, None, 1000, 1000)[:2] == (0, 0)  # kept inside
    assert faces.face_area(face, 10.0, 1.0, 200, 120) == (65, 0, 120, 120)  # shrunk to the image


def test_without_the_extra_face_parameters_answer_501_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # as if opencv were not installed
    faces.available.cache_clear()
    try:
        with pytest.raises(FacesUnavailable, match=r"image-origin\[faces\]") as raised:
            faces.detect(photo())
        assert raised.value.status == 501
    finally:
        faces.available.cache_clear()


def animated_faces(frames: int = 3) -> bytes:
    """A wide animation with her face near its right edge on every frame (a dot moves, so the
    frames differ): a centre crop misses her, a face crop must not."""
    pages = []
    for index in range(frames):
        page = flat(600, 154, (90, 90, 90)).insert(photo(), 420, 0)
        pages.append(page.insert(flat(6, 6, (255, 255, 0)), 450 + 30 * index, 112))
    strip = pyvips.Image.arrayjoin(pages, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", 154)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [100] * frames)
    return strip.gifsave_buffer()


@pytest.mark.parametrize("query", ["fit=crop&crop=faces&w=150&h=154", "fit=facearea&w=100&h=100"])
def test_an_animation_is_cropped_to_the_faces_of_its_first_frame(query: str) -> None:
    """imgix applies every parameter to every frame of an animation. We find the faces on the
    first frame and cut every frame at that one region, so the animation keeps one geometry."""
    from dataclasses import replace
    from urllib.parse import parse_qsl

    from origin.formats import Accepts
    from origin.params import parse_query
    from origin.render import render
    from origin.render.guard import RenderGuard
    from origin.settings import defaults

    animated = replace(defaults().render, animation=True)
    spec = parse_query(parse_qsl(f"{query}&fm=gif"), defaults().output)
    rendered = render(animated_faces(), spec, Accepts.LEGACY, animated, None, RenderGuard())
    out = pyvips.Image.new_from_buffer(rendered.body, "", n=-1)
    height = out.get("page-height")
    assert out.height // height == 3 and (rendered.width, rendered.height) == (out.width, height)
    boxes = [faces.detect(out.crop(0, i * height, out.width, height)) for i in range(3)]
    assert all(len(found) == 1 for found in boxes), boxes
    xs, ys = [f[0].x for f in boxes], [f[0].y for f in boxes]
    assert max(xs) - min(xs) <= 2 and max(ys) - min(ys) <= 2  # one region for every frame
    centre = boxes[0][0].x + boxes[0][0].w / 2
    assert abs(centre - out.width / 2) < out.width * 0.15  # centred on her face
    plain = parse_query(parse_qsl("fit=crop&w=150&h=154&fm=gif"), defaults().output)
    centred = render(animated_faces(), plain, Accepts.LEGACY, animated, None, RenderGuard())
    assert faces.detect(pyvips.Image.new_from_buffer(centred.body, "")) == []  # a centre crop loses her
