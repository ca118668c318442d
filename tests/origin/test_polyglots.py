"""Image/HTML polyglots are refused by structure, not by a list of tags (issue 8, item 9).

Each polyglot below is a real image that libvips decodes, with an HTML payload after
the image's own end that the old tag blocklist let through. Uploaded by PUT and by
POST they are a 415 naming what follows the end, and nothing is stored. Valid images
whose structure has legal extras (an EXIF thumbnail with its own EOI, an animated GIF,
PNG chunks after IDAT, a second JPEG image as MPF writes, zero padding) are accepted
and served byte for byte, with `CSP: sandbox` and `nosniff`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
import pyvips

from origin.containers import trailing_bytes
from origin.formats import sniff
from tests.images import decode, encode, jpeg, png, quadrants
from tests.origin.http.test_hostile import animated_gif
from tests.origin.http.test_manage import AUTH, TOKEN, expect_error, form, png_chunk, snapshot

PAYLOADS = {
    "img-onerror": b"<img src=x onerror=alert(document.domain)>",
    "meta-refresh": b'<meta http-equiv=refresh content="0;url=https://evil.example/">',
    "object-javascript": b"<object data=javascript:alert(1)></object>",
    "style-javascript": b'<style>body{background:url("javascript:alert(1)")}</style>',
    "xhtml-namespaced-script": b'<x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>',
    "utf16-script": "<script>alert(1)</script>".encode("utf-16"),
}
CSP = "default-src 'none'; sandbox"


@pytest.fixture
async def api(make_client: Callable[..., Any]) -> Any:
    return await make_client(tokens=[TOKEN])


def base_images() -> dict[str, bytes]:
    image = quadrants(40, 30)
    return {
        "jpg": jpeg(40, 30),
        "png": png(40, 30),
        "gif": encode(image, ".gif"),
        "webp": encode(image, ".webp"),
        "avif": encode(image, ".avif", effort=0),
    }


def exif_thumbnail_jpeg() -> bytes:
    """A JPEG whose APP1 EXIF block holds a thumbnail JPEG, with its own SOI and EOI."""
    thumb = jpeg(16, 12)
    ifd1 = struct.pack(">H", 2)
    ifd1 += struct.pack(">HHII", 0x0201, 4, 1, 44)  # JPEGInterchangeFormat: the thumbnail's offset
    ifd1 += struct.pack(">HHII", 0x0202, 4, 1, len(thumb))  # JPEGInterchangeFormatLength
    ifd1 += struct.pack(">I", 0)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">HI", 0, 14) + ifd1 + thumb
    assert tiff.index(thumb) == 44
    payload = b"Exif\x00\x00" + tiff
    main = jpeg(64, 48)
    return main[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + main[2:]


def png_with_text_after_idat() -> bytes:
    body = png(30, 20)
    iend = body.rindex(b"IEND") - 4
    extra = png_chunk(b"tEXt", b"Comment\x00made by a test") + png_chunk(b"tIME", b"\x07\xea\x0c\x04\x12\x00\x00")
    return body[:iend] + extra + body[iend:]


LEGAL = {
    "jpeg-with-exif-thumbnail": exif_thumbnail_jpeg,
    "animated-gif": lambda: animated_gif(frames=6, side=16),
    "png-chunks-after-idat": png_with_text_after_idat,
    "jpeg-then-second-jpeg-mpf": lambda: jpeg(64, 48) + jpeg(32, 24),
    "jpeg-zero-padded": lambda: jpeg(64, 48) + b"\x00" * 64,
    "progressive-jpeg": lambda: jpeg(64, 48, interlace=True),
    "animated-webp": lambda: pyvips.Image.new_from_buffer(animated_gif(frames=4, side=16), "", n=-1).write_to_buffer(
        ".webp"
    ),
}


async def upload_both_ways(api: Any, key: str, body: bytes) -> list[Any]:
    """PUT it and POST it; the two answers, read."""
    answers = []
    async with api.put(f"/{key}", data=body, headers=AUTH) as resp:
        answers.append((resp.status, await resp.json()))
    folder, _, name = key.rpartition("/")
    async with api.post(f"/{folder}-post", data=form((name, body)), headers=AUTH) as resp:
        answers.append((resp.status, await resp.json()))
    return answers


@pytest.mark.parametrize("payload", list(PAYLOADS))
async def test_jpeg_with_html_after_its_end_is_refused(api, store, data_dir, payload):
    store("keep.png", png())
    before = snapshot(data_dir)
    body = jpeg() + PAYLOADS[payload]
    decode(body).avg()  # a valid image to libvips: only its structure gives it away
    for status, answer in await upload_both_ways(api, "p/poly.jpg", body):
        assert status == 415, answer
        assert answer["error"]["code"] == "unsupported_media_type"
        message = answer["error"]["message"]
        counted = len(PAYLOADS[payload].rstrip(b"\x00"))  # zero padding at the very end is not counted
        assert f"{counted} byte(s) follow the end of the JPEG image" in message
    assert snapshot(data_dir) == before


@pytest.mark.parametrize("fmt", ["jpg", "png", "gif", "webp", "avif"])
async def test_every_format_refuses_what_follows_its_end(api, data_dir, fmt):
    name = {"jpg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WebP", "avif": "AVIF"}[fmt]
    image = base_images()[fmt]
    assert trailing_bytes(image, fmt) == 0
    for payload in (PAYLOADS["img-onerror"], PAYLOADS["utf16-script"], b"\x00\x00<b>x</b>"):
        body = image + payload
        if fmt != "webp":  # WebP's RIFF size makes libvips ignore what follows; the others decode too
            decode(body).avg()
        for status, answer in await upload_both_ways(api, f"f/x.{fmt}", body):
            assert status == 415, answer
            assert f"follow the end of the {name} image" in answer["error"]["message"]
    assert snapshot(data_dir) == {}


@pytest.mark.parametrize("case", list(LEGAL))
async def test_legal_structure_is_accepted_and_served_byte_for_byte(api, data_dir, case):
    body = LEGAL[case]()
    decode(body).avg()
    assert trailing_bytes(body, sniff(body)) == 0
    async with api.put(f"/ok/{case}", data=body, headers=AUTH) as resp:
        assert resp.status == 201, await resp.text()
    async with api.post("/ok-post", data=form((case, body)), headers=AUTH) as resp:
        assert resp.status == 201, await resp.text()
    for key in (f"ok/{case}", f"ok-post/{case}"):
        async with api.get(f"/{key}") as resp:
            assert resp.status == 200
            assert await resp.read() == body
            assert resp.headers["Content-Security-Policy"] == CSP
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["Content-Type"].startswith("image/")


async def test_markup_inside_the_structure_is_still_refused(api, data_dir):
    """A JPEG comment or a PNG text chunk holding a script: inside the image, refused by the scan."""
    main = jpeg()
    comment = b"<script>alert(1)</script>"
    with_com = main[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + main[2:]
    body = png(30, 20)
    iend = body.rindex(b"IEND") - 4
    with_text = body[:iend] + png_chunk(b"tEXt", b"Comment\x00<svg onload=alert(1)>") + body[iend:]
    for image in (with_com, with_text):
        assert trailing_bytes(image, sniff(image)) == 0
        async with api.put("/inside.img", data=image, headers=AUTH) as resp:
            error = await expect_error(resp, 415, "unsupported_media_type")
        assert "markup" in error["message"]
    assert snapshot(data_dir) == {}
