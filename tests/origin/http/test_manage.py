"""The management API over real HTTP (docs/threats.md U1-U16, D1-D3, L1-L4; auth; CORS).

Every rule is checked for its status and error code and for "nothing lost": the data
folder (every object's bytes) is identical before and after a refused request, and no
temp file is left under `_/tmp/`. Images are made at test time (tests/images.py);
hostile files (a PNG header declaring 64250 x 64250, polyglots) are built by hand.
"""

from __future__ import annotations

import asyncio
import errno
import json
import re
import stat
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pyvips
import yarl
from aiohttp import FormData

from origin.errors import Forbidden
from origin.http.appkeys import STORAGE
from origin.http.auth import management_tokens
from origin.tokens import Tokens
from tests.images import decode, encode, jpeg, png, quadrants

TOKEN = "t0k3n"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORIGIN = "https://cms.example.com"
CAP = 64 * 1024
"""A small upload limit for the size tests, so they stay fast."""


# --------------------------------------------------------------------------- helpers


@pytest.fixture
async def api(make_client: Callable[..., Any]) -> Any:
    return await make_client(tokens=[TOKEN])


def snapshot(data_dir: Path) -> dict[str, bytes]:
    """Every object in the data folder with its bytes (the service's own `_/` excluded)."""
    return {
        str(path.relative_to(data_dir)): path.read_bytes()
        for path in sorted(data_dir.rglob("*"))
        if path.is_file() and path.relative_to(data_dir).parts[0] != "_"
    }


def temp_files(data_dir: Path) -> list[Path]:
    return [path for path in (data_dir / "_" / "tmp").rglob("*") if path.is_file()] if (data_dir / "_").exists() else []


async def expect_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    """Status, the JSON error body, security headers, and no caching of management answers."""
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == "application/json"
    body = json.loads(text)
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "Traceback" not in text
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"
    return body["error"]


def form(*files: tuple[str, bytes], field: str = "data", content_type: str = "application/octet-stream") -> FormData:
    data = FormData()
    for filename, body in files:
        data.add_field(field, body, filename=filename, content_type=content_type)
    return data


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_bomb(width: int = 64250, height: int = 64250) -> bytes:
    """A valid PNG header declaring width x height RGB, with one tiny IDAT (lottapixel style)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 256, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def multipart(boundary: str, *files: tuple[str | bytes, bytes]) -> bytes:
    """A form as a browser writes it: file names as raw UTF-8 (or any bytes)."""
    out = b""
    for filename, body in files:
        name = filename.encode() if isinstance(filename, str) else filename
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="data"; filename="'.encode() + name
        out += b'"\r\n\r\n' + body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def form_headers(boundary: str) -> dict[str, str]:
    return {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"}


async def raw_request(client: Any, head: str, body: bytes = b"", *, close_early: bool = False) -> bytes:
    """Send a request by hand; with `close_early`, hang up after `body` without reading an answer."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head.encode() + body)
    await writer.drain()
    if close_early:
        writer.close()
        await writer.wait_closed()
        return b""
    answer = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    return answer


async def listing(client: Any, **params: str) -> dict[str, Any]:
    async with client.get("/", params=params, headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


# --------------------------------------------------------------------------- POST /{path}


async def test_upload_stores_each_file_and_describes_it(api, data_dir):
    photo, icon = jpeg(64, 48), png(30, 20)
    async with api.post("/products/shoes", data=form(("a.jpg", photo), ("b.png", icon)), headers=AUTH) as resp:
        assert resp.status == 201, await resp.text()
        assert resp.headers["Cache-Control"] == "no-store"
        images = (await resp.json())["images"]
    assert [image["key"] for image in images] == ["products/shoes/a.jpg", "products/shoes/b.png"]
    first, second = images
    assert first["url"] == "/products/shoes/a.jpg"
    assert (first["width"], first["height"], first["format"], first["content_type"]) == (64, 48, "jpg", "image/jpeg")
    assert (second["width"], second["height"], second["format"]) == (30, 20, "png")
    assert first["size"] == len(photo) and first["etag"]
    assert (data_dir / "products/shoes/a.jpg").read_bytes() == photo
    async with api.get("/products/shoes/b.png") as resp:  # reads stay public
        assert resp.status == 200
        assert resp.headers["ETag"] == f'"{second["etag"]}"'
        assert await resp.read() == icon


async def test_upload_at_the_root_and_with_a_trailing_slash(api, data_dir):
    async with api.post("/", data=form(("top.png", png())), headers=AUTH) as resp:
        assert resp.status == 201
    async with api.post("/folder/", data=form(("in.png", png())), headers=AUTH) as resp:
        assert resp.status == 201
        assert (await resp.json())["images"][0]["key"] == "folder/in.png"
    assert sorted(snapshot(data_dir)) == ["folder/in.png", "top.png"]


async def test_upload_conflict_409_names_existing_and_stores_none(api, store, data_dir):
    store("p/a.jpg", jpeg())
    store("p/c.png", png())
    before = snapshot(data_dir)
    files = form(("a.jpg", jpeg(80, 60)), ("b.png", png()), ("c.png", png(10, 10)))
    async with api.post("/p", data=files, headers=AUTH) as resp:
        error = await expect_error(resp, 409, "already_exists")
    assert error["keys"] == ["p/a.jpg", "p/c.png"]
    assert "p/a.jpg" in error["message"]
    assert snapshot(data_dir) == before
    assert temp_files(data_dir) == []


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: FormData({"data": "not a file"}), id="no-file-part"),
        pytest.param(lambda: form(("a.png", png()), field="image"), id="part-not-named-data-or-file"),
        pytest.param(lambda: form(("a.png", png()), ("a.png", png(8, 8))), id="same-file-name-twice"),
    ],
)
async def test_u16_form_errors_store_nothing(api, data_dir, build):
    async with api.post("/f", data=build(), headers=AUTH) as resp:
        await expect_error(resp, 400, "invalid_form")
    assert snapshot(data_dir) == {}


async def test_u16_a_body_that_is_not_multipart_or_is_malformed(api, data_dir):
    async with api.post("/f", data=png(), headers={**AUTH, "Content-Type": "image/png"}) as resp:
        await expect_error(resp, 400, "invalid_form")
    bad = {**AUTH, "Content-Type": "multipart/form-data; boundary=xyz"}
    async with api.post("/f", data=b"--abc\r\ngarbage", headers=bad) as resp:
        await expect_error(resp, 400, "invalid_form")
    assert snapshot(data_dir) == {}


async def test_batch_failing_midway_removes_what_it_stored(api, data_dir, monkeypatch):
    """U14: the disk fills up as the second file is linked into place: the first is removed, 507."""
    storage = api.app[STORAGE]
    real_commit = storage._commit

    def failing_commit(key: str, *args: Any) -> None:
        if key.endswith("b.png"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_commit(key, *args)

    monkeypatch.setattr(storage, "_commit", failing_commit)
    async with api.post("/batch", data=form(("a.png", png()), ("b.png", png())), headers=AUTH) as resp:
        error = await expect_error(resp, 507, "storage_unwritable")
    assert "storage is full" in error["message"]
    assert snapshot(data_dir) == {}
    assert temp_files(data_dir) == []


# --------------------------------------------------------------------------- sizes (U1-U3)


async def test_u1_declared_length_over_the_cap_is_refused_before_the_body(make_client, data_dir):
    client = await make_client(tokens=[TOKEN], max_upload_bytes=CAP)
    for head in (
        f"PUT /big.png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {CAP + 1}\r\n\r\n",
        f"POST /big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {100 * CAP}\r\n\r\n",
    ):
        answer = await raw_request(client, head)  # not one body byte is sent, yet the answer comes
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b'"payload_too_large"' in answer
    assert snapshot(data_dir) == {}


async def test_u2_chunked_body_growing_past_the_cap(make_client, data_dir):
    client = await make_client(tokens=[TOKEN], max_upload_bytes=CAP)
    big = encode(pyvips.Image.gaussnoise(256, 256, sigma=60).cast("uchar").bandjoin([1, 2]), ".png")
    assert len(big) > CAP

    async def chunks(body: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    async with client.put("/big.png", data=chunks(big), headers=AUTH) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        await expect_error(resp, 413, "payload_too_large")
    async with client.post("/big", data=chunks(multipart("b", ("big.png", big))), headers=form_headers("b")) as resp:
        await expect_error(resp, 413, "payload_too_large")
    assert snapshot(data_dir) == {}
    assert temp_files(data_dir) == []


async def test_a_file_just_under_the_cap_is_stored(make_client, data_dir):
    client = await make_client(tokens=[TOKEN], max_upload_bytes=CAP)
    image = png(64, 64)
    assert len(image) < CAP
    async with client.put("/fits.png", data=image, headers=AUTH) as resp:
        assert resp.status == 201


async def test_u3_empty_body(api, data_dir):
    async with api.put("/empty.png", data=b"", headers=AUTH) as resp:
        await expect_error(resp, 400, "empty_body")
    async with api.post("/e", data=form(("empty.png", b"")), headers=AUTH) as resp:
        await expect_error(resp, 400, "empty_body")
    assert snapshot(data_dir) == {}


# --------------------------------------------------------------------------- content (U4-U8)


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'


def decodable_gif_polyglot() -> bytes:
    """A real GIF that libvips decodes, with an HTML payload after its trailer."""
    gif = encode(quadrants(16, 16), ".gif") + b"<html><script>alert(document.domain)</script></html>"
    decode(gif).avg()  # valid as an image: only the markup scan can refuse it
    return gif


@pytest.mark.parametrize(
    ("body", "declared"),
    [
        pytest.param(SVG, "image/svg+xml", id="u4-svg"),
        pytest.param(SVG, "image/png", id="u4-svg-declared-png"),
        pytest.param(b"<!doctype html><html><script>alert(1)</script></html>", "image/jpeg", id="u5-html-as-jpeg"),
        pytest.param(b"GIF89a<script>alert(1)</script>", "image/gif", id="u5-gif-html-polyglot"),
        pytest.param(decodable_gif_polyglot(), "image/gif", id="u5-decodable-polyglot"),
        pytest.param(pyvips.Image.black(8, 8).tiffsave_buffer(), "image/tiff", id="tiff"),
    ],
)
async def test_u4_u5_not_an_image_is_415_and_nothing_stored(api, store, data_dir, body, declared):
    store("keep.png", png())
    before = snapshot(data_dir)
    async with api.put("/x.img", data=body, headers={**AUTH, "Content-Type": declared}) as resp:
        await expect_error(resp, 415, "unsupported_media_type")
    async with api.post("/up", data=form(("x.img", body), content_type=declared), headers=AUTH) as resp:
        await expect_error(resp, 415, "unsupported_media_type")
    assert snapshot(data_dir) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(png_bomb(), "image_too_large", id="u6-64250x64250-header"),
        pytest.param(jpeg(400, 300)[:3000], "corrupt_image", id="u7-truncated-jpeg"),
        pytest.param(png(400, 300)[:-200], "corrupt_image", id="u7-truncated-png"),
    ],
)
async def test_u6_u7_refused_by_probe_or_decode_422(api, data_dir, body, code):
    async with api.put("/bad.png", data=body, headers=AUTH) as resp:
        await expect_error(resp, 422, code)
    async with api.post("/up", data=form(("bad.png", body)), headers=AUTH) as resp:
        await expect_error(resp, 422, code)
    assert snapshot(data_dir) == {}


async def test_one_bad_file_in_a_batch_stores_none(api, data_dir):
    files = form(("good.png", png()), ("bad.jpg", jpeg(400, 300)[:3000]))
    async with api.post("/mixed", data=files, headers=AUTH) as resp:
        await expect_error(resp, 422, "corrupt_image")
    assert snapshot(data_dir) == {}


async def test_u8_declared_type_is_ignored_the_sniffed_one_is_stored(api):
    photo = jpeg()
    async with api.put("/shoe.png", data=photo, headers={**AUTH, "Content-Type": "image/png"}) as resp:
        assert resp.status == 201
        assert (await resp.json())["content_type"] == "image/jpeg"
    async with api.post("/u8", data=form(("shoe.png", photo), content_type="image/png"), headers=AUTH) as resp:
        assert (await resp.json())["images"][0]["content_type"] == "image/jpeg"
    async with api.get("/shoe.png") as resp:
        assert resp.content_type == "image/jpeg"
        assert await resp.read() == photo
    entry = (await listing(api))["images"][0]
    assert entry["content_type"] == "image/jpeg"


# --------------------------------------------------------------------------- PUT preconditions (U9-U12)


async def test_put_creates_201_with_location_and_etag(api, data_dir):
    image = png(40, 30)
    async with api.put("/new/one.png", data=image, headers=AUTH) as resp:
        assert resp.status == 201
        body = await resp.json()
        assert resp.headers["Location"] == "/new/one.png"
        assert resp.headers["ETag"] == f'"{body["etag"]}"'
    assert (body["key"], body["width"], body["height"], body["format"]) == ("new/one.png", 40, 30, "png")
    assert (data_dir / "new/one.png").read_bytes() == image


async def test_u9_put_on_an_existing_key_without_precondition_is_409(api, store, data_dir):
    store("a.png", png())
    before = snapshot(data_dir)
    async with api.put("/a.png", data=png(8, 8), headers=AUTH) as resp:
        await expect_error(resp, 409, "already_exists")
    assert snapshot(data_dir) == before


async def test_u10_if_none_match_star_on_an_existing_key_is_412(api, store, data_dir):
    store("a.png", png())
    before = snapshot(data_dir)
    async with api.put("/a.png", data=png(8, 8), headers={**AUTH, "If-None-Match": "*"}) as resp:
        await expect_error(resp, 412, "precondition_failed")
    assert snapshot(data_dir) == before
    async with api.put("/b.png", data=png(8, 8), headers={**AUTH, "If-None-Match": "*"}) as resp:
        assert resp.status == 201


async def test_u11_if_match_replaces_that_version_only(api, store, data_dir):
    store("a.png", png())
    async with api.get("/a.png") as resp:
        current = resp.headers["ETag"]
    before = snapshot(data_dir)
    for stale in ('"0123456789abcdef"', f"W/{current}", "*-not-a-tag"):
        async with api.put("/a.png", data=png(8, 8), headers={**AUTH, "If-Match": stale}) as resp:
            await expect_error(resp, 412, "precondition_failed")
    async with api.put("/missing.png", data=png(8, 8), headers={**AUTH, "If-Match": "*"}) as resp:
        await expect_error(resp, 412, "precondition_failed")
    assert snapshot(data_dir) == before
    replacement = png(8, 8)
    async with api.put("/a.png", data=replacement, headers={**AUTH, "If-Match": current}) as resp:
        assert resp.status == 200, await resp.text()
        assert "Location" not in resp.headers
        assert resp.headers["ETag"] != current
    assert (data_dir / "a.png").read_bytes() == replacement
    async with api.put("/a.png", data=png(9, 9), headers={**AUTH, "If-Match": "*"}) as resp:
        assert resp.status == 200


async def test_put_precondition_headers_that_make_no_sense_are_refused(api, store):
    store("a.png", png())
    async with api.put("/a.png", data=png(), headers={**AUTH, "If-None-Match": '"abc"'}) as resp:
        await expect_error(resp, 400, "invalid_param")
    async with api.put("/a.png", data=png(), headers={**AUTH, "If-Match": '"a", "b"'}) as resp:
        await expect_error(resp, 400, "invalid_param")
    both = {**AUTH, "If-Match": "*", "If-None-Match": "*"}
    async with api.put("/a.png", data=png(), headers=both) as resp:
        await expect_error(resp, 412, "precondition_failed")


async def test_overwrite_serves_the_new_image_and_never_an_old_variant(make_client, store):
    """R27 through the API: the source's version is invalidated at once (a long metadata TTL here)."""
    client = await make_client(tokens=[TOKEN], metadata_ttl=300)
    store("swap.png", png(200, 100))
    async with client.get("/swap.png?w=50") as resp:
        old_etag = resp.headers["ETag"]
        assert decode(await resp.read()).height == 25
    async with client.get("/swap.png") as resp:
        version = resp.headers["ETag"]
    async with client.put("/swap.png", data=png(100, 100), headers={**AUTH, "If-Match": version}) as resp:
        assert resp.status == 200
    async with client.get("/swap.png?w=50") as resp:
        assert resp.headers["ETag"] != old_etag
        assert decode(await resp.read()).height == 50


async def test_u12_concurrent_creates_exactly_one_wins(api, data_dir):
    bodies = [png(10 + i, 10) for i in range(8)]

    async def post(body: bytes) -> int:
        async with api.post("/race", data=form(("same.png", body)), headers=AUTH) as resp:
            return resp.status

    statuses = await asyncio.gather(*(post(body) for body in bodies))
    assert sorted(statuses) == [201] + [409] * 7
    assert (data_dir / "race/same.png").read_bytes() == bodies[statuses.index(201)]

    async def put(body: bytes) -> int:
        async with api.put("/race/put.png", data=body, headers={**AUTH, "If-None-Match": "*"}) as resp:
            return resp.status

    statuses = await asyncio.gather(*(put(body) for body in bodies))
    assert sorted(statuses) == [201] + [412] * 7
    assert (data_dir / "race/put.png").read_bytes() == bodies[statuses.index(201)]
    assert temp_files(data_dir) == []


# --------------------------------------------------------------------------- U13, U15


async def test_u13_client_hangs_up_mid_upload(api, data_dir):
    image = png(300, 200)
    boundary = "cut"
    body = multipart(boundary, ("cut.png", image))
    for head, sent in (
        (
            f"PUT /cut.png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {len(image)}\r\n\r\n",
            image,
        ),
        (
            f"POST /cut HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n",
            body,
        ),
    ):
        await raw_request(api, head, sent[: len(sent) // 2], close_early=True)
    await asyncio.sleep(0.2)  # the server notices the hang-up
    async with api.get("/_/health") as resp:
        assert resp.status == 200
    assert snapshot(data_dir) == {}
    assert temp_files(data_dir) == []


async def test_a_batch_whose_writes_have_begun_finishes_after_the_client_leaves(api, data_dir, monkeypatch):
    """The store step is app-owned: a hang-up once writing has begun leaves the whole batch, not half."""
    storage = api.app[STORAGE]
    real_create_all = storage.create_all
    writing = asyncio.Event()

    async def slow_create_all(objects: Any) -> Any:
        writing.set()
        await asyncio.sleep(0.2)
        return await real_create_all(objects)

    monkeypatch.setattr(storage, "create_all", slow_create_all)
    parts = multipart("b", ("one.png", png()), ("two.png", png(9, 9)))
    head = (
        f"POST /left HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(parts)}\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection(api.host, api.port)
    writer.write(head.encode() + parts)
    await asyncio.wait_for(writing.wait(), 5)
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.4)
    assert sorted(snapshot(data_dir)) == ["left/one.png", "left/two.png"]
    assert temp_files(data_dir) == []


@pytest.mark.parametrize(
    "target", ["/_/x.png", "/a/../b.png", "/a/%2e%2e/b.png", "/a//b.png", "/%00.png", "/" + "k" * 600]
)
async def test_u15_invalid_keys_are_400_before_the_body(api, data_dir, target):
    """Sent as raw request targets, so neither client nor router folds `..` or `//` first."""
    url = yarl.URL(f"http://{api.host}:{api.port}{target}", encoded=True)
    async with api.session.put(url, data=png(), headers=AUTH) as resp:
        await expect_error(resp, 400, "invalid_key")
    folder = yarl.URL(f"http://{api.host}:{api.port}{target.removesuffix('.png')}", encoded=True)
    async with api.session.post(folder, data=form(("a.png", png())), headers=AUTH) as resp:
        await expect_error(resp, 400, "invalid_key")
    async with api.session.delete(folder, json={"images": ["a.png"]}, headers=AUTH) as resp:
        await expect_error(resp, 400, "invalid_key")
    assert snapshot(data_dir) == {}


async def test_u15_file_names_are_validated_as_part_of_the_key(api, data_dir):
    for name in (b"..", b"../up.png", b"\xff.png", b"k" * 300):
        async with api.post("/names", data=multipart("b", (name, png())), headers=form_headers("b")) as resp:
            await expect_error(resp, 400, "invalid_key")
    async with api.post("/names", data=multipart("b", (b"x\x01.png", png())), headers=form_headers("b")) as resp:
        await expect_error(resp, 400, "invalid_form")  # aiohttp's part-header parser refuses it first
    assert snapshot(data_dir) == {}
    async with api.post("/names", data=multipart("b", ("café.png", png())), headers=form_headers("b")) as resp:
        assert (await resp.json())["images"][0]["key"] == "names/café.png"
    assert (data_dir / "names" / "café.png").exists()


# --------------------------------------------------------------------------- DELETE (D1, D3)


async def test_delete_removes_each_name(api, store, data_dir):
    store("d/a.png", png())
    store("d/b.jpg", jpeg())
    store("d/keep.png", png())
    async with api.delete("/d", json={"images": ["a.png", "b.jpg"]}, headers=AUTH) as resp:
        assert resp.status == 200
        assert (await resp.json())["deleted"] == ["d/a.png", "d/b.jpg"]
    async with api.delete("/d", json={"files": ["keep.png"]}, headers=AUTH) as resp:
        assert resp.status == 200
    assert snapshot(data_dir) == {}


async def test_d1_any_missing_is_404_naming_them_and_removes_none(api, store, data_dir):
    store("d/a.png", png())
    before = snapshot(data_dir)
    async with api.delete("/d", json={"images": ["a.png", "nope.png", "gone.jpg"]}, headers=AUTH) as resp:
        error = await expect_error(resp, 404, "not_found")
    assert error["keys"] == ["d/nope.png", "d/gone.jpg"]
    assert snapshot(data_dir) == before


async def test_d3_delete_then_render_is_404(make_client, store):
    client = await make_client(tokens=[TOKEN], metadata_ttl=300)
    store("d3.png", png(100, 100))
    async with client.get("/d3.png?w=40") as resp:
        assert resp.status == 200  # cached variant and cached version
    async with client.delete("/", json={"images": ["d3.png"]}, headers=AUTH) as resp:
        assert resp.status == 200
    for target in ("/d3.png?w=40", "/d3.png"):
        async with client.get(target) as resp:
            await resp.read()
            assert resp.status == 404


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="bad-json"),
        pytest.param(b'{"images": []}', id="empty-list"),
        pytest.param(b'{"images": "a.png"}', id="not-a-list"),
        pytest.param(b'{"images": [1]}', id="not-strings"),
        pytest.param(b'{"images": ["a.png"], "files": ["a.png"]}', id="both-fields"),
        pytest.param(b'["a.png"]', id="not-an-object"),
        pytest.param(b"[" * 100_000, id="nested-100000-deep"),
    ],
)
async def test_delete_body_errors_are_400_and_remove_nothing(api, store, data_dir, body):
    store("d/a.png", png())
    before = snapshot(data_dir)
    async with api.delete("/d", data=body, headers={**AUTH, "Content-Type": "application/json"}) as resp:
        await expect_error(resp, 400, "invalid_form")
    async with api.delete("/", headers=AUTH) as resp:
        await expect_error(resp, 400, "empty_body")
    assert snapshot(data_dir) == before


# --------------------------------------------------------------------------- GET / (L1-L4)


async def test_listing_pages_through_250_keys(api, store):
    keys = sorted(f"cat/{i:03d}-{name}" for i in range(125) for name in ("a.png", "b.png"))
    for key in keys:
        store(key, b"\x89PNG\r\n\x1a\n" + key.encode())
    store("other/x.png", png())
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"prefix": "cat/", "limit": "100", **({"cursor": cursor} if cursor else {})}
        page = await listing(api, **params)
        seen += [item["key"] for item in page["images"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == keys  # complete, in order, no duplicates
    assert (await listing(api, prefix="cat/", limit="100"))["images"] == (
        await listing(api, prefix="cat/", limit="100")
    )["images"]
    entry = (await listing(api, prefix="cat/", limit="1"))["images"][0]
    assert sorted(entry) == ["content_type", "etag", "key", "last_modified", "size", "url"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["last_modified"])
    assert entry["content_type"] == "image/png"
    assert len((await listing(api))["images"]) == 100  # default limit


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "param_out_of_range"),
        ("limit=100000", "param_out_of_range"),
        ("limit=1001", "param_out_of_range"),
        ("limit=" + "9" * 5000, "param_out_of_range"),
        ("limit=abc", "invalid_param"),
        ("limit=-1", "invalid_param"),
        ("cursor=garbage!!", "invalid_cursor"),
        ("cursor=Zm9vLnBuZw", "invalid_cursor"),  # a well-formed cursor for another prefix
        ("prefix=../", "invalid_key"),
        ("prefix=a/%00", "invalid_key"),
        ("prefix=_/", "invalid_key"),
        ("prefix=a//", "invalid_key"),
        ("limit=1&limit=2", "duplicate_param"),
        ("sort=desc", "unknown_param"),
    ],
)
async def test_l1_l2_l3_bad_listing_parameters(api, store, query, code):
    store("cat/a.png", png())
    async with api.get(f"/?prefix=cat/&{query}" if query.startswith("cursor") else f"/?{query}", headers=AUTH) as resp:
        await expect_error(resp, 400, code)


async def test_l4_service_files_are_never_listed(api, store, data_dir):
    store("a.png", png())
    (data_dir / "_" / "tmp").mkdir(parents=True, exist_ok=True)
    (data_dir / "_" / "tmp" / "put-inflight").write_bytes(png())
    assert [item["key"] for item in (await listing(api))["images"]] == ["a.png"]


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": TOKEN}, 401, "unauthorized"),
        ({"Authorization": f"Basic {TOKEN}"}, 401, "unauthorized"),
        ({"Authorization": "Bearer "}, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, 403, "forbidden"),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403, "forbidden"),
    ],
)
async def test_management_needs_the_bearer_token(api, store, data_dir, headers, status, code):
    store("a.png", png())
    before = snapshot(data_dir)
    for method, target, kwargs in (
        ("GET", "/", {}),
        ("POST", "/f", {"data": form(("b.png", png()))}),
        ("PUT", "/b.png", {"data": png()}),
        ("PUT", "/a.png", {"data": png(), "headers": {"If-Match": "*"}}),
        ("DELETE", "/", {"json": {"images": ["a.png"]}}),
    ):
        sent = {**kwargs.pop("headers", {}), **headers}
        async with api.request(method, target, headers=sent, **kwargs) as resp:
            error = await expect_error(resp, status, code)
            if status == 401:
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert TOKEN not in json.dumps(error)
    assert snapshot(data_dir) == before
    async with api.get("/a.png") as resp:  # reads need no token
        assert resp.status == 200


async def test_any_configured_token_is_accepted(make_client):
    client = await make_client(tokens=["first", "second"])
    for token in ("first", "second"):
        async with client.get("/", headers={"Authorization": f"bearer {token}"}) as resp:
            assert resp.status == 200


async def test_a_token_is_generated_on_first_start_and_reused(make_client, data_dir):
    client = await make_client()
    path = data_dir / "_" / "token"
    token = path.read_text().strip()
    assert len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    async with client.put("/a.png", data=png(), headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 201
    async with client.get("/_/token") as resp:
        await expect_error_plain(resp, 400, "invalid_key")
    await client.close()
    again = await make_client()
    assert path.read_text().strip() == token
    async with again.get("/", headers={"Authorization": f"Bearer {token}"}) as resp:
        assert [item["key"] for item in (await resp.json())["images"]] == ["a.png"]


async def expect_error_plain(resp: Any, status: int, code: str) -> None:
    assert resp.status == status
    assert (await resp.json())["error"]["code"] == code


def test_configured_tokens_win_and_remote_storage_without_tokens_refuses_all(tmp_path):
    assert management_tokens(("a", "b"), tmp_path).values == (b"a", b"b")
    tokens = management_tokens((), None)
    assert tokens == Tokens(())
    with pytest.raises(Forbidden, match="tokens"):
        tokens.check(f"Bearer {TOKEN}")


async def test_s3_without_tokens_answers_403_and_with_tokens_manages(make_client, s3_url):
    refused = await make_client(storage_url=s3_url, tokens=[])
    async with refused.post("/s3", data=form(("a.png", png())), headers=AUTH) as resp:
        error = await expect_error(resp, 403, "forbidden")
    assert "tokens" in error["message"]
    client = await make_client(storage_url=s3_url, tokens=[TOKEN])
    async with client.post("/s3", data=form(("a.png", png(20, 10)), ("b.jpg", jpeg())), headers=AUTH) as resp:
        assert resp.status == 201, await resp.text()
    async with client.post("/s3", data=form(("a.png", png())), headers=AUTH) as resp:
        await expect_error(resp, 409, "already_exists")
    assert [item["key"] for item in (await listing(client))["images"]] == ["s3/a.png", "s3/b.jpg"]
    async with client.get("/s3/a.png?w=10") as resp:
        assert decode(await resp.read()).width == 10
    async with client.delete("/s3", json={"images": ["a.png", "b.jpg"]}, headers=AUTH) as resp:
        assert resp.status == 200
    assert (await listing(client))["images"] == []


# --------------------------------------------------------------------------- CORS


async def test_preflight_from_an_allowed_origin(make_client):
    client = await make_client(tokens=[TOKEN], manage_cors_origins=[ORIGIN])
    request = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization",
    }
    for target in ("/", "/a/b.png"):
        async with client.options(target, headers=request) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert "PUT" in resp.headers["Access-Control-Allow-Methods"]
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
            assert int(resp.headers["Access-Control-Max-Age"]) > 0
    async with client.put("/c.png", data=png(), headers={**AUTH, "Origin": ORIGIN}) as resp:
        assert resp.status == 201
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    async with client.put("/c.png", data=png(), headers={**AUTH, "Origin": ORIGIN}) as resp:
        await expect_error(resp, 409, "already_exists")
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN  # the page can read the error


async def test_a_disallowed_origin_gets_no_cors_headers(make_client, store):
    store("a.png", png())
    client = await make_client(tokens=[TOKEN], manage_cors_origins=[ORIGIN])
    evil = "https://evil.example"
    async with client.options("/a.png", headers={"Origin": evil, "Access-Control-Request-Method": "DELETE"}) as resp:
        assert resp.status == 204
        assert not any(name.startswith("Access-Control-") for name in resp.headers)
    for method, kwargs in (("DELETE", {"json": {"images": ["a.png"]}}), ("GET", {})):
        target = "/" if method == "GET" else "/"
        async with client.request(method, target, headers={"Origin": evil}, **kwargs) as resp:
            assert resp.status == 401
            assert not any(name.startswith("Access-Control-") for name in resp.headers)
    async with client.get("/a.png", headers={"Origin": evil}) as resp:  # reads keep cors_origin
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_no_management_origins_by_default(api):
    request = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    async with api.options("/x", headers=request) as resp:
        assert resp.status == 204
        assert "Access-Control-Allow-Origin" not in resp.headers
