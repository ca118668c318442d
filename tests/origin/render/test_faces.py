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
