"""The overlay families over HTTP: text, faces, watermark details, blending, auto=enhance/redeye.

What a client sees: sizes, pixels, JSON, status codes and ETags. Face tests run the real
detector (the `faces` extra is part of the `test` extra) on a committed photograph.
"""

from __future__ import annotations

import base64
import json
import sys
from urllib.parse import quote

import pytest
import pyvips

from origin.render import faces as face_detection
from origin.render.faces import Face
from tests import FIXTURES
from tests.images import close, decode, encode, flat, magic, pixel, quadrants

PHOTO = (FIXTURES / "faces" / "astronaut.jpg").read_bytes()
HER_FACE = Face(51, 43, 60, 60)
WHITE = (255, 255, 255)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def iou(a: Face, b: Face) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return ix * iy / (a.w * a.h + b.w * b.h - ix * iy)


async def fetch(client, path: str):  # type: ignore[no-untyped-def]
    async with client.get(path) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


async def test_text_is_drawn_in_its_colour_and_txt64_is_txt(client, store) -> None:  # type: ignore[no-untyped-def]
    store("white.png", encode(flat(300, 100, WHITE)))
    words = "Hello, world & more"
    status, headers, body = await fetch(
        client, f"/white.png?txt={quote(words)}&txt-color=f00&txt-size=24&txt-align=top,left&fm=png"
    )
    assert status == 200 and magic(body) == "png"
    image = decode(body)
    left, top, width, height = image.find_trim(threshold=40, background=list(WHITE))
    assert 10 <= left <= 14 and 10 <= top <= 18 and 150 < width < 280 and 14 < height < 30
    red = (image[0] > 200) & (image[1] < 80) & (image[2] < 80)
    assert red.avg() > 0  # glyph pixels are txt-color
    status64, encoded, body64 = await fetch(
        client, f"/white.png?txt64={b64(words)}&txtclr=f00&tsz=24&ta=top,left&fm=png"
    )  # Base64 and aliases: one variant
    assert status64 == 200, body64
    assert encoded["ETag"] == headers["ETag"] and body64 == body


async def test_typesetting_parameters_reach_the_text(client, store) -> None:  # type: ignore[no-untyped-def]
    """txt-lead, txt-track and txt-lig (by their aliases too) change what is drawn."""
    store("white.png", encode(flat(400, 200, WHITE)))

    async def ink(query: str) -> tuple[int, int, int, int]:
        status, _, body = await fetch(client, f"/white.png?txt-size=40&txt-align=top,left&fm=png&{query}")
        assert status == 200, body
        return decode(body).find_trim(threshold=40, background=list(WHITE))

    two_lines = quote("HHH\nHHH")
    assert (await ink(f"txt={two_lines}&txtlead=30"))[3] - (await ink(f"txt={two_lines}"))[3] == 30
    assert (await ink("txt=HHHHH&tt=10"))[2] - (await ink("txt=HHHHH"))[2] == pytest.approx(40, abs=2)
    assert (await ink("txt=ffi&txtlig=0"))[2] > (await ink("txt=ffi"))[2]


async def test_text_limits_come_from_settings(make_client, store) -> None:  # type: ignore[no-untyped-def]
    store("white.png", encode(flat(300, 100, WHITE)))
    client = await make_client(max_text_chars=5, max_text_lines=2)
    status, _, body = await fetch(client, "/white.png?txt=toolong")
    assert status == 400 and "max_text_chars" in json.loads(body)["error"]["message"]
    status, _, body = await fetch(client, "/white.png?txt=a%0Ab%0Ac")
    assert status == 400 and "lines" in json.loads(body)["error"]["message"]
    status, _, body = await fetch(client, "/white.png?txt=%E2%98%95")  # a coffee cup: no shipped glyph
    assert status == 400 and "U+2615" in json.loads(body)["error"]["message"]


async def test_fit_facearea_frames_her_face(client, store) -> None:  # type: ignore[no-untyped-def]
    canvas = flat(500, 400, (90, 90, 90)).insert(pyvips.Image.new_from_buffer(PHOTO, ""), 150, 120)
    store("her.png", encode(canvas))
    status, _, body = await fetch(client, "/her.png?fit=facearea&w=120&h=120&fm=png")
    assert status == 200 and decode(body).width == 120 and decode(body).height == 120
    found = face_detection.detect(decode(body))
    assert found, "the framed face is still a face"
    face = found[0]
    assert abs(face.x + face.w / 2 - 60) < 12 and abs(face.y + face.h / 2 - 60) < 12  # centred
    assert 40 < face.w < 90  # facepad=1: the face is about half the frame
    _, _, tight = await fetch(client, "/her.png?fit=facearea&w=120&h=120&facepad=3&fm=png")
    assert face_detection.detect(decode(tight))[0].w < face.w * 0.6  # facepad=3: half the size of facepad=1


async def test_crop_faces_keeps_the_face_a_centre_crop_loses(client, store) -> None:  # type: ignore[no-untyped-def]
    wide = flat(600, 154, (90, 90, 90)).insert(pyvips.Image.new_from_buffer(PHOTO, ""), 400, 0)
    store("wide.png", encode(wide))
    _, _, centred = await fetch(client, "/wide.png?fit=crop&w=150&h=154&fm=png")
    assert face_detection.detect(decode(centred)) == []
    status, _, body = await fetch(client, "/wide.png?fit=crop&crop=faces&w=150&h=154&fm=png")
    assert status == 200 and (decode(body).width, decode(body).height) == (150, 154)
    assert len(face_detection.detect(decode(body))) == 1


async def test_faces_in_json(client, store) -> None:  # type: ignore[no-untyped-def]
    store("her.jpg", PHOTO)
    status, _, body = await fetch(client, "/her.jpg?fm=json&faces=1")
    assert status == 200
    boxes = json.loads(body)["faces"]
    assert len(boxes) == 1
    found = Face(boxes[0]["x"], boxes[0]["y"], boxes[0]["width"], boxes[0]["height"])
    assert iou(found, HER_FACE) > 0.5
    assert "faces" not in json.loads((await fetch(client, "/her.jpg?fm=json"))[2])


@pytest.mark.parametrize(
    "query", ["fit=facearea&w=50&h=50", "fit=crop&crop=faces&w=50&h=50", "fm=json&faces=1", "auto=redeye"]
)
async def test_without_the_faces_extra_it_is_a_501_naming_it(client, store, monkeypatch, query) -> None:  # type: ignore[no-untyped-def]
    store("her.jpg", PHOTO)
    monkeypatch.setitem(sys.modules, "cv2", None)  # as if opencv were not installed
    face_detection.available.cache_clear()
    try:
        status, _, body = await fetch(client, f"/her.jpg?{query}")
    finally:
        face_detection.available.cache_clear()
    error = json.loads(body)["error"]
    assert status == 501 and error["code"] == "faces_unavailable"
    assert "image-origin[faces]" in error["message"]


async def test_redeye_darkens_red_pupils_only(client, store) -> None:  # type: ignore[no-untyped-def]
    photo = pyvips.Image.new_from_buffer(PHOTO, "")
    eyes = ((68, 65), (96, 66))  # her pupils, read off the photograph
    for x, y in eyes:
        photo = photo.draw_circle([230, 20, 20], x, y, 3, fill=True)
    store("red.png", encode(photo))
    status, _, body = await fetch(client, "/red.png?auto=redeye&fm=png")
    assert status == 200
    fixed = decode(body)
    for x, y in eyes:
        r, g, b = pixel(fixed, x, y)[:3]
        assert r < 60, (x, y, r, g, b)  # no longer red
    assert pixel(fixed, 10, 150) == pixel(photo, 10, 150)  # her orange suit, outside faces: untouched


async def test_auto_enhance_stretches_a_flat_image(client, store) -> None:  # type: ignore[no-untyped-def]
    dull = pyvips.Image.grey(200, 50, uchar=True).linear(130 / 255, 60).cast("uchar").copy(interpretation="b-w")
    dull = dull.bandjoin([dull, dull]).copy(interpretation="srgb")  # a ramp from 60 to 190
    store("dull.png", encode(dull))
    _, _, body = await fetch(client, "/dull.png?auto=enhance&fm=png")
    image = decode(body)
    assert image.extract_band(0).min() < 10 and image.extract_band(0).max() > 245
    _, _, same = await fetch(client, "/dull.png?fm=png")
    assert decode(same).extract_band(0).min() >= 59  # the plain render keeps the flat range


async def test_mark_details_over_http(client, store) -> None:  # type: ignore[no-untyped-def]
    store("base.png", encode(flat(200, 100, WHITE)))
    store("logos/dot.png", encode(flat(10, 10, (0, 0, 0))))
    status, headers, body = await fetch(client, "/base.png?mark=dot.png&mark-base=logos/&mark-x=30&mark-y=40&fm=png")
    assert status == 200
    assert tuple(decode(body).find_trim(threshold=40, background=list(WHITE))) == (30, 40, 10, 10)
    _, same, _ = await fetch(client, "/base.png?mark=logos/dot.png&mx=30&my=40&fm=png")
    assert same["ETag"] == headers["ETag"]  # mark-base is a key prefix: one variant
    _, _, tiled = await fetch(client, "/base.png?mark=logos/dot.png&mark-tile=grid&mark-pad=10&fm=png")
    assert close(pixel(tiled, 5, 5), (0, 0, 0)) and close(pixel(tiled, 25, 25), (0, 0, 0))
    assert close(pixel(tiled, 15, 5), WHITE)
    status, _, body = await fetch(client, "/base.png?mark=a.png&mark-base=https://evil.example/")
    assert status == 400 and "not a URL" in json.loads(body)["error"]["message"]


async def test_blend_image_is_a_storage_key_in_the_etag(client, store) -> None:  # type: ignore[no-untyped-def]
    store("base.png", encode(flat(100, 50, WHITE)))
    store("layers/black.png", encode(flat(20, 20, (0, 0, 0))))
    path = "/base.png?blend=layers/black.png&blend-mode=normal&blend-x=30&blend-y=10&fm=png"
    status, headers, body = await fetch(client, path)
    assert status == 200
    assert tuple(decode(body).find_trim(threshold=40, background=list(WHITE))) == (30, 10, 20, 20)
    store("layers/black.png", encode(flat(10, 10, (0, 0, 0))))
    _, replaced, _ = await fetch(client, path)
    assert replaced["ETag"] != headers["ETag"]  # the blend image's version is part of the variant
    status, _, body = await fetch(client, "/base.png?blend=layers/none.png")
    assert status == 400 and "blend" in json.loads(body)["error"]["message"]


async def test_blend_colour_spellings_are_one_variant(client, store) -> None:  # type: ignore[no-untyped-def]
    store("grey.png", encode(flat(40, 30, (128, 128, 128))))
    _, a, body = await fetch(client, "/grey.png?blend=ff0000&bm=multiply&fm=png")
    _, b, _ = await fetch(client, "/grey.png?blend-color=red&blend-mode=multiply&fm=png")
    assert a["ETag"] == b["ETag"]
    assert close(pixel(body, 5, 5), (128, 0, 0), 4)
    _, _, half = await fetch(client, "/grey.png?blend-color=f00&blend-mode=normal&blend-alpha=50&fm=png")
    assert close(pixel(half, 5, 5), (191, 64, 64), 4)


async def test_blend_fit_clamp_fills_the_box_with_the_edge_pixels(client, store) -> None:  # type: ignore[no-untyped-def]
    """imgix: blend-fit=clamp fits the blend image inside blend-w x blend-h without cropping or
    distorting it, fills the rest of the box with its extended edge pixels, and matches the box."""
    store("base.png", encode(flat(200, 200, WHITE)))
    red, blue = flat(50, 50, (255, 0, 0)), flat(50, 50, (0, 0, 255))
    store("layers/halves.png", encode(red.join(blue, "horizontal")))  # 100x50: red | blue
    query = "blend=layers/halves.png&blend-mode=normal&blend-align=top,left&blend-w=100&blend-h=100&fm=png"
    status, _, body = await fetch(client, f"/base.png?{query}&blend-fit=clamp")
    assert status == 200, body
    image = decode(body)
    assert tuple(image.find_trim(threshold=40, background=list(WHITE))) == (0, 0, 100, 100)  # the whole box
    for x, y in ((10, 3), (10, 50), (10, 96)):  # the image in the middle band, its edges above and below
        assert close(pixel(image, x, y), (255, 0, 0)), (x, y)
    for x, y in ((90, 3), (90, 50), (90, 96)):
        assert close(pixel(image, x, y), (0, 0, 255)), (x, y)
    assert close(pixel(image, 150, 50), WHITE) and close(pixel(image, 50, 150), WHITE)
    _, _, clip = await fetch(client, f"/base.png?{query}")  # the default, clip: only the fitted image
    assert tuple(decode(clip).find_trim(threshold=40, background=list(WHITE))) == (0, 0, 100, 50)


async def test_blend_crop_faces_centres_the_blend_crop_on_the_face(client, store) -> None:  # type: ignore[no-untyped-def]
    """imgix: with blend-fit=crop, blend-crop=faces centres the crop on the faces found in the blend
    image (else the other words, else the centre). The face sits near the right edge of a wide
    blend image: a centre crop loses it, the face crop keeps it centred."""
    wide = flat(600, 154, (90, 90, 90)).insert(pyvips.Image.new_from_buffer(PHOTO, ""), 420, 0)
    store("layers/wide.png", encode(wide))
    store("base.png", encode(flat(300, 200, WHITE)))
    query = "blend=layers/wide.png&blend-mode=normal&blend-fit=crop&blend-w=150&blend-h=154&blend-x=20&blend-y=10"
    _, _, centred = await fetch(client, f"/base.png?{query}&fm=png")
    layer = decode(centred).crop(20, 10, 150, 154)
    assert face_detection.detect(layer) == []
    assert close(pixel(layer, 75, 77), (90, 90, 90))  # the grey middle of the blend image
    status, _, body = await fetch(client, f"/base.png?{query}&blend-crop=faces&fm=png")
    assert status == 200, body
    image = decode(body)
    assert tuple(image.find_trim(threshold=40, background=list(WHITE))) == (20, 10, 150, 154)
    found = face_detection.detect(image.crop(20, 10, 150, 154))
    assert len(found) == 1
    face = found[0]
    assert abs(face.x + face.w / 2 - 75) < 10  # centred across the crop
    left = 420 + HER_FACE.x + HER_FACE.w // 2 - 75  # where a crop centred on her face starts
    assert iou(face, Face(420 + HER_FACE.x - left, HER_FACE.y, HER_FACE.w, HER_FACE.h)) > 0.5


async def test_a_blend_box_larger_than_the_base_is_clipped_by_its_edges(client, store) -> None:  # type: ignore[no-untyped-def]
    """imgix: blend-w/h may be larger than the base image; blend-fit=crop sizes the blend image to
    exactly the box and the base's edges clip it. A 300x300 box on a 10x10 base is no error: the
    base shows the corner of the box the alignment puts there."""
    store("base.png", encode(flat(10, 10, (128, 128, 128))))
    store("layers/quadrants.png", encode(quadrants(200, 200)))  # red | green over blue | white
    query = "blend=layers/quadrants.png&blend-mode=normal&blend-fit=crop&blend-w=300&blend-h=300&fm=png"
    for align, colour in (("top,left", (255, 0, 0)), ("top,right", (0, 255, 0)), ("bottom,right", WHITE)):
        status, _, body = await fetch(client, f"/base.png?{query}&blend-align={align}")
        assert status == 200, body
        image = decode(body)
        assert (image.width, image.height) == (10, 10)
        assert all(close(pixel(image, x, y), colour) for x in (0, 9) for y in (0, 9)), align


async def test_a_mark_box_far_larger_than_the_base_is_cut_then_shrunk(client, store) -> None:  # type: ignore[no-untyped-def]
    """A 4000x1 mark covering a 2000x2000 crop box would be 8,000,000x2000 before the cut: it is
    cut and shrunk to fit the image less mark-pad without ever being held whole."""
    store("base.png", encode(flat(100, 100, WHITE)))
    store("logos/line.png", encode(flat(4000, 1, (255, 0, 0))))
    status, _, body = await fetch(client, "/base.png?mark=logos/line.png&mark-w=2000&mark-h=2000&mark-fit=crop&fm=png")
    assert status == 200, body
    image = decode(body)
    assert tuple(image.find_trim(threshold=40, background=list(WHITE))) == (5, 5, 90, 90)
    assert close(pixel(image, 50, 50), (255, 0, 0))
