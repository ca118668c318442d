"""Hostile and broken inputs on the render path, over real HTTP (docs/threats.md R1-R28, B1/B2/B5).

Every request here goes through the real app on a test server. Keys are sent as raw
request targets (`yarl.URL(..., encoded=True)`) so neither the client nor the router
normalises `..`, `%2e%2e` or `//` before the handler sees them. Source images are made
at test time: tiny PNG headers that declare huge sizes are hand-built with zlib.crc32.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import struct
import time
import zlib
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import pyvips
import yarl
from multidict import CIMultiDict
from pydantic import ValidationError

from origin.errors import NotFound
from origin.http.appkeys import POOL
from origin.render import UnsafeLibvips, harden, security
from origin.settings import ConfigError, Settings, load_settings
from origin.storage import LocalStorage
from tests.images import decode, encode, flat, jpeg, magic, png, quadrants

CSP = "default-src 'none'; sandbox"
RETRY_AFTER = "2"  # Settings.retry_after default


# --------------------------------------------------------------------------- helpers


def raw_url(client, target: str) -> yarl.URL:
    """`target` exactly as written on the request line: no dot-segment or slash folding."""
    return yarl.URL(f"http://{client.host}:{client.port}{target}", encoded=True)


async def raw_get(client, target: str, **kwargs):
    return await client.session.get(raw_url(client, target), **kwargs)


def max_age(cache_control: str) -> int:
    found = re.search(r"max-age=(\d+)", cache_control)
    assert found, cache_control
    return int(found.group(1))


async def expect_error(resp, status: int, code: str) -> dict:
    """The error contract: status, JSON body shape, security headers, short or no caching."""
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == "application/json"
    body = json.loads(text)
    assert list(body) == ["error"]
    assert sorted(body["error"]) == ["code", "message", "request_id"]
    assert body["error"]["request_id"] == resp.headers["X-Request-ID"]
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in text
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == CSP
    if status >= 500:
        assert resp.headers["Cache-Control"] == "no-store"
    else:
        assert max_age(resp.headers["Cache-Control"]) <= 60
    return body


async def fetch(client, target: str, **kwargs) -> tuple[int, CIMultiDict[str], bytes]:
    async with await raw_get(client, target, **kwargs) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


async def admitted(client) -> int:
    """Renders the pool holds (running or queued): read from the app, /_/health publishes none."""
    async with client.get("/_/health") as resp:
        assert resp.status == 200 and await resp.json() == {"status": "ok"}
    return client.server.app[POOL].admitted


async def wait_for_idle(client, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while await admitted(client) != 0:
        assert time.monotonic() < deadline, "a render slot was never released"
        await asyncio.sleep(0.02)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height 8-bit RGB, with one tiny IDAT (lottapixel style)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 256, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def animated_gif(frames: int = 20, side: int = 32) -> bytes:
    strip = pyvips.Image.arrayjoin([flat(side, side, (i * 12 % 256, 40, 200)) for i in range(frames)], across=1)
    strip = strip.copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", side)
    return strip.write_to_buffer(".gif")


def sparse_animated_gif(side: int, frames: int) -> bytes:
    """A GIF of `frames` frames on a `side` x `side` screen, each frame one pixel: ~2.3 KB for
    100 frames of 1000x1000 (within the frame and total pixel limits), 100 MP to decode."""
    head = b"GIF89a" + struct.pack("<HHBBB", side, side, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = b"\x21\xf9\x04\x04\x0a\x00\x00\x00\x2c%s\x02\x02\x44\x01\x00"
    body = b"".join(frame % struct.pack("<HHHHB", i % side, i % side, 1, 1, 0) for i in range(frames))
    return head + loop + body + b"\x3b"


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


SVG_SCRIPT = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" '
    b'onload="alert(1)"><script>alert(document.domain)</script><rect width="40" height="40"/></svg>'
)


def bmp_bytes() -> bytes:
    """A 2x2 24-bit BMP."""
    pixels = (b"\x00\x00\xff" * 2 + b"\x00\x00") * 2
    header = b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def foreign_sources() -> dict[str, bytes]:
    return {
        "evil.svg": SVG_SCRIPT,
        "disguised.png": SVG_SCRIPT,  # the extension lies; the bytes decide
        "scan.tiff": pyvips.Image.black(4, 4).tiffsave_buffer(),
        "old.bmp": bmp_bytes(),
        "doc.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        "layers.psd": b"8BPS\x00\x01" + b"\x00" * 64,
        "page.html": b"<!doctype html><script>alert(1)</script>",
    }


# --------------------------------------------------------------------------- R1-R6 parameters


async def test_r1_unknown_param(client, store):
    store("p.png", png())
    async with client.get("/p.png?wdth=100") as resp:
        body = await expect_error(resp, 400, "unknown_param")
    assert "wdth" in body["error"]["message"]


async def test_r1_unknown_param_name_is_truncated_in_message(client, store):
    store("p.png", png())
    async with client.get("/p.png", params={"x" * 5000: "1"}) as resp:
        body = await expect_error(resp, 400, "unknown_param")
    assert len(body["error"]["message"]) < 200


async def test_r2_duplicate_param(client, store):
    store("p.png", png())
    async with await raw_get(client, "/p.png?w=100&w=200") as resp:
        await expect_error(resp, 400, "duplicate_param")


@pytest.mark.parametrize(
    "value",
    ["0", "-1", "abc", "1e3", "00100", "%D9%A1%D9%A0%D9%A0", "100px", "+100", "0x64", "", "NaN", "inf", "%ff"],
    ids=[
        "zero",
        "negative",
        "word",
        "exponent",
        "leading-zeros",
        "arabic-indic",
        "unit",
        "plus",
        "hex",
        "empty",
        "nan",
        "inf",
        "bad-utf8",
    ],
)
async def test_r3_bad_number(client, store, value):
    store("p.png", png())
    async with await raw_get(client, f"/p.png?w={value}") as resp:
        await expect_error(resp, 400, "invalid_param")


async def test_r4_width_clamped_to_cap_same_etag(client, store):
    store("p.png", png(64, 48))
    results = {}
    for query in ("w=8192&h=1&fit=scale", "w=4096&h=1&fit=scale", "w=5000&h=1&fit=scale"):
        status, headers, body = await fetch(client, f"/p.png?{query}")
        assert status == 200
        results[query] = (headers["ETag"], body)
    assert len(set(results.values())) == 1
    image = decode(results["w=8192&h=1&fit=scale"][1])
    assert (image.width, image.height) == (4096, 1)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("w=300000", "between 2 and 8192"),
        ("h=8193", "between 2 and 8192"),
        ("w=99999999999&h=1", "between 2 and 8192"),
        ("w=100&dpr=5.5", "at most 5"),  # dpr goes to 5, as imgix's srcsets do
        ("w=100&dpr=50", "at most 5"),
        ("w=100&dpr=1000", "at most 5"),
    ],
)
async def test_r4_sizes_past_imgix_strict_range_are_refused_naming_it(client, store, query, named):
    store("p.png", png(64, 48))
    async with await raw_get(client, f"/p.png?{query}") as resp:
        body = await expect_error(resp, 400, "param_out_of_range")
    assert named in body["error"]["message"]


async def test_r4_height_clamped_to_cap(client, store):
    store("p.png", png(64, 48))
    _, big, body = await fetch(client, "/p.png?h=8192&fit=clip")
    _, cap, _ = await fetch(client, "/p.png?h=4096&fit=clip")
    assert big["ETag"] == cap["ETag"]
    image = decode(body)
    assert max(image.width, image.height) <= 4096


async def test_r4_dpr_goes_to_5_as_imgix_srcsets_do(client, store):
    store("p.png", png(64, 48))
    etags = set()
    for query in ("w=100&dpr=5", "w=500"):
        status, headers, body = await fetch(client, f"/p.png?{query}")
        assert status == 200
        etags.add(headers["ETag"])
    assert len(etags) == 1
    assert decode(body).width == 500


async def test_r4_pixel_size_clamped_beside_fractional_size(client, store):
    store("p.png", png(64, 48))
    _, big, _ = await fetch(client, "/p.png?w=8000&h=0.5")
    _, cap, _ = await fetch(client, "/p.png?w=4096&h=0.5")
    assert big["ETag"] == cap["ETag"]


PAD_QUERIES = ["pad=2000", "w=4096&h=10&fit=scale&pad=1000", "h=8192&pad=2000&fit=clamp", "pad=1500&w=0.5"]


@pytest.mark.parametrize("query", PAD_QUERIES)
async def test_r4_padding_never_exceeds_output_cap(client, store, query):
    store("p.png", png(64, 48))
    status, _, body = await fetch(client, f"/p.png?{query}&fm=png")
    assert status == 200
    image = decode(body)
    assert max(image.width, image.height) <= 4096


@pytest.mark.parametrize("query", ["pad=2048", "w=4096&h=10&fit=scale&pad=2048"])
async def test_r4_maximum_padding_never_exceeds_output_cap(client, store, query):
    await test_r4_padding_never_exceeds_output_cap(client, store, query)


@pytest.mark.parametrize(
    ("value", "edge"), [("0", "1"), ("101", "100"), ("-5", "1"), ("1000000000000000000000", "100")]
)
async def test_r5_quality_past_its_suggested_range_is_the_edge_variant(client, store, value, edge):
    store("p.png", png())
    _, past, _ = await fetch(client, f"/p.png?q={value}&fm=jpg")
    _, at_edge, _ = await fetch(client, f"/p.png?q={edge}&fm=jpg")
    assert past["ETag"] == at_edge["ETag"]


@pytest.mark.parametrize("value", ["svg", "tiff", "..%2Fx", "../x", "PNG", "jpeg", "png%00", "heic"])
async def test_r6_bad_format(client, store, value):
    store("p.png", png())
    async with await raw_get(client, f"/p.png?fm={value}") as resp:
        body = await expect_error(resp, 400, "invalid_param")
    assert "jpg, pjpg, png, webp, avif, gif, json" in body["error"]["message"]


# --------------------------------------------------------------------------- R10-R11 cache keys


async def test_r10_param_order_same_variant_and_bytes(client, store):
    store("p.png", png(64, 48))
    queries = (
        "w=40&h=30&fit=crop&crop=top,left&q=60&fm=webp&sat=10",
        "sat=10&fm=webp&q=60&crop=left,top&fit=crop&h=30&w=40",
        "fm=webp&crop=left,top&w=40.0&sat=10&ixlib=js-3.8.0&q=60&h=30&fit=crop",
    )
    seen = set()
    for query in queries:
        status, headers, body = await fetch(client, f"/p.png?{query}")
        assert status == 200
        seen.add((headers["ETag"], body))
    assert len(seen) == 1
    assert client.app[POOL].renders == 1


ACCEPTS = {
    "image/avif": "avif",
    "image/avif,image/webp,image/*,*/*;q=0.8": "avif",
    "IMAGE/AVIF": "avif",
    "image/webp": "webp",
    "image/avif;q=0, image/webp": "webp",
    "image/webp;q=0.5,text/html": "webp",
    "text/html,application/xhtml+xml": "png",
    "garbage/;;;,,,q=zz ~!@#$ image/avif-ish": "png",
    "*/*": "png",
    "image/avif;q=abc": "png",
    "": "png",
    "image/webp," + "x" * 8000: "webp",  # ~8 KB, inside aiohttp's 8190-byte field limit
}


@pytest.mark.parametrize("accept", list(ACCEPTS), ids=lambda a: a[:24] or "empty")
async def test_r11_accept_negotiation(client, store, accept):
    store("p.png", png(64, 48))
    async with client.get("/p.png?w=16&auto=format", headers={"Accept": accept}) as resp:
        assert resp.status == 200
        body = await resp.read()
        assert resp.headers["Vary"] == "Accept"
    assert magic(body) == ACCEPTS[accept]
    assert resp.headers["Content-Type"] == f"image/{ACCEPTS[accept]}"


async def test_r11_at_most_three_variants_across_accept_values(client, store):
    store("p.png", png(64, 48))
    rnd = random.Random(11)
    values = list(ACCEPTS) + [
        ", ".join(
            rnd.choice(["image/avif", "image/webp", "image/png", "text/*", "*/*", "x/y"]) + f";q=0.{rnd.randint(0, 9)}"
            for _ in range(4)
        )
        for _ in range(20)
    ]
    etags = set()
    for accept in values:
        async with client.get("/p.png?w=16&auto=format", headers={"Accept": accept}) as resp:
            assert resp.status == 200
            assert resp.headers["Vary"] == "Accept"
            etags.add(resp.headers["ETag"])
    assert len(etags) <= 3
    assert client.app[POOL].renders <= 3


async def test_r11_not_modified_keeps_vary(client, store):
    store("p.png", png())
    async with client.get("/p.png?w=16&auto=format", headers={"Accept": "image/webp"}) as resp:
        etag = resp.headers["ETag"]
    async with client.get("/p.png?w=16&auto=format", headers={"Accept": "image/webp", "If-None-Match": etag}) as resp:
        assert resp.status == 304
        assert resp.headers["Vary"] == "Accept"


async def test_r11_accept_ignored_without_auto_format(client, store):
    store("p.png", png())
    etags = set()
    for accept in ("image/avif", "image/webp", "", "garbage"):
        async with client.get("/p.png?w=16", headers={"Accept": accept}) as resp:
            assert resp.status == 200 and "Vary" not in resp.headers
            assert magic(await resp.read()) == "png"
            etags.add(resp.headers["ETag"])
    assert len(etags) == 1


async def test_r11_accept_header_of_8_kib(client, store):
    store("p.png", png())
    async with client.get("/p.png?w=16&auto=format", headers={"Accept": "image/webp," + "x" * 8192}) as resp:
        assert resp.status == 200
        assert magic(await resp.read()) == "webp"


# --------------------------------------------------------------------------- R12-R13 keys


BAD_KEYS = {
    "dotdot-passwd": "/../../etc/passwd",
    "encoded-dotdot": "/%2e%2e/x",
    "encoded-dotdot-upper": "/%2E%2E/x",
    "encoded-slash": "/..%2fx",
    "encoded-both": "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "inner-dotdot": "/a/../../b",
    "dot-segment": "/a/./b",
    "only-dotdot": "/..",
    "absolute": "//abs",
    "absolute-encoded": "/%2Fetc%2Fpasswd",
    "empty-segment": "/a//b",
    "trailing-slash": "/a/",
    "backslash-encoded": "/a%5Cb",
    "backslash-dotdot": "/..%5C..%5Cetc%5Cpasswd",
    "backslash-raw": "/a\\b",
    "nul": "/%00",
    "nul-suffix": "/p.png%00.jpg",
    "carriage-return": "/a%0Db",
    "tab": "/a%09b",
    "del": "/a%7Fb",
    "c1-control": "/a%C2%85b",
    "bad-utf8": "/%ff%fe",
    "overlong-utf8-dot": "/%c0%ae%c0%ae/x",
    "two-kb": "/" + "a" * 2048,
    "long-segment": "/" + "b" * 300 + "/x.png",
    "reserved": "/_/reserved",
    "reserved-bare": "/_",
}


@pytest.mark.parametrize("target", list(BAD_KEYS.values()), ids=list(BAD_KEYS))
async def test_r12_invalid_key(client, store, target):
    store("p.png", png())
    for query in ("", "?w=10"):
        async with await raw_get(client, target + query) as resp:
            await expect_error(resp, 400, "invalid_key")


@pytest.mark.parametrize("target", ["/a%0Ab", "/a%0D%0Ab", "/%0A"], ids=["lf", "crlf", "only-lf"])
async def test_r12_newline_in_key(client, store, target):
    store("p.png", png())
    async with await raw_get(client, target) as resp:
        await expect_error(resp, 400, "invalid_key")


async def test_r12_mark_key_is_validated(client, store):
    store("p.png", png())
    async with await raw_get(client, "/p.png?mark=..%2F..%2Fetc%2Fpasswd") as resp:
        await expect_error(resp, 400, "invalid_key")


async def test_r12_nothing_outside_the_root_is_reachable(client, store, data_dir):
    secret = data_dir.parent / "secret.png"
    secret.write_bytes(png())
    os.symlink(secret, data_dir / "link.png")
    os.symlink(data_dir.parent, data_dir / "linkdir")
    for target in (
        "/../secret.png",
        "/%2e%2e/secret.png",
        "/..%2fsecret.png",
        "/link.png",
        "/linkdir/secret.png",
        "/%252e%252e/secret.png",
    ):
        for query in ("", "?w=10"):
            async with await raw_get(client, target + query) as resp:
                assert resp.status in (400, 404), (target, resp.status)
                assert resp.content_type == "application/json"


@pytest.mark.parametrize("target", ["/missing.png", "/a/b/c.jpg", "/%252e%252e/x", "/dir", "/dir/x.png/y"])
async def test_r13_missing_key(client, store, target):
    store("dir/x.png", png())
    for query in ("", "?w=10", "?fm=json"):
        async with await raw_get(client, target + query) as resp:
            await expect_error(resp, 404, "not_found")


async def test_r13_special_files_are_absent(client, store, data_dir):
    os.symlink("loop.png", data_dir / "loop.png")
    os.mkfifo(data_dir / "fifo.png")
    for target in ("/loop.png", "/loop.png/x", "/fifo.png"):
        for query in ("", "?w=10"):
            async with await raw_get(client, target + query) as resp:
                await expect_error(resp, 404, "not_found")


async def test_r13_storage_read_of_a_fifo_does_not_block(data_dir):
    fifo = data_dir / "fifo.png"
    os.mkfifo(fifo)
    storage = LocalStorage(data_dir)
    try:
        with pytest.raises(NotFound):
            await asyncio.wait_for(storage.get("fifo.png"), 2)
    finally:
        try:  # unblock a reader stuck in open(), should the fix regress
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


# --------------------------------------------------------------------------- R14-R19 sources


async def test_r14_lottapixel_refused_fast_with_flat_memory(client, store):
    bomb = png_header_only(64250, 64250)
    assert len(bomb) < 5000
    store("bomb.png", bomb)
    store("p.png", png())
    await fetch(client, "/p.png?w=10")  # warm up the render path
    before = rss_bytes()
    started = time.perf_counter()
    for query in ("?w=100", "?fm=json", "?w=100&fm=webp", "?rect=0,0,10,10"):
        async with client.get("/bomb.png" + query) as resp:
            body = await expect_error(resp, 422, "image_too_large")
            assert "50 megapixels" in body["error"]["message"]
    assert time.perf_counter() - started < 1.0
    assert rss_bytes() - before < 50 * 1024 * 1024


async def test_r14_lottapixel_as_watermark(client, store):
    store("bomb.png", png_header_only(64250, 64250))
    store("p.png", png())
    async with client.get("/p.png?mark=bomb.png") as resp:
        await expect_error(resp, 422, "image_too_large")


@pytest.mark.parametrize("size", [(16384, 16384), (16385, 1), (1, 100000)], ids=["16k-square", "wide", "tall"])
async def test_r15_declared_size_too_large(client, store, size):
    store("big.png", png_header_only(*size))
    async with client.get("/big.png?w=10") as resp:
        await expect_error(resp, 422, "image_too_large")


async def test_r16_too_many_frames(make_client, store):
    store("anim.gif", animated_gif(20))
    client = await make_client(animation=True, max_frames=5)
    for query in ("?fm=gif&w=16", "?w=16", "?fm=webp&w=16"):
        async with client.get("/anim.gif" + query) as resp:
            body = await expect_error(resp, 422, "too_many_frames")
            assert "20 frames" in body["error"]["message"]
    status, _, body = await fetch(client, "/anim.gif?fm=png&w=16")
    assert status == 200 and magic(body) == "png"


async def test_r16_total_animation_pixels(make_client, store):
    store("anim.gif", animated_gif(20, 32))
    client = await make_client(animation=True, max_frames=50, max_animation_pixels=10_000)
    async with client.get("/anim.gif?fm=gif&w=16") as resp:
        await expect_error(resp, 422, "too_many_frames")


async def test_animation_encode_cost_is_refused_before_rendering(make_client, store):
    """Issue 8 item 4: a 2.3 KB GIF of 100 frames of 1000x1000 asked for at w=500 as GIF cost
    10 s of CPU per distinct width; frames x output pixels x the encoder's cost is checked first."""
    data = sparse_animated_gif(1000, 100)
    assert len(data) < 2500
    store("sparse.gif", data)
    client = await make_client(animation=True)  # default frame and pixel limits: 100 frames, 100 MP
    for query, work in (("?w=500&fm=gif", "50.0 M"), ("?w=500&fm=webp", "25.0 M"), ("?fm=gif&w=501", "50.2 M")):
        started = time.monotonic()
        async with client.get("/sparse.gif" + query) as resp:
            body = await expect_error(resp, 422, "animation_too_costly")
        assert time.monotonic() - started < 2.0  # refused from the header, not after rendering
        message = body["error"]["message"]
        assert "max_animation_encode_pixels" in message and work in message and "100 frames" in message
    status, _, body = await fetch(client, "/sparse.gif?w=20&fm=gif")  # 100 x 20 x 20 x 2 = 80 K: rendered
    assert status == 200 and magic(body) == "gif"
    status, _, body = await fetch(client, "/sparse.gif?w=500&fm=png")  # a still: one frame, no limit
    assert status == 200 and magic(body) == "png"


async def test_animation_encode_limit_is_a_setting(make_client, store):
    store("anim.gif", animated_gif(20))
    client = await make_client(animation=True, max_animation_encode_pixels=20 * 16 * 16)
    assert (await fetch(client, "/anim.gif?fm=webp&w=16"))[0] == 200  # exactly at the limit
    async with client.get("/anim.gif?fm=gif&w=16") as resp:  # GIF counts twice
        await expect_error(resp, 422, "animation_too_costly")


async def test_r16_within_limits_keeps_frames(make_client, store):
    store("anim.gif", animated_gif(20))
    client = await make_client(animation=True, max_frames=50)
    status, _, body = await fetch(client, "/anim.gif?fm=gif&w=16")
    assert status == 200
    assert pyvips.Image.new_from_buffer(body, "", n=-1).get("n-pages") == 20


async def test_r16_without_animation_first_frame_only(client, store):
    store("anim.gif", animated_gif(20))
    for query in ("?fm=gif&w=16", "?w=16", "?fm=webp&w=16"):
        status, _, body = await fetch(client, "/anim.gif" + query)
        assert status == 200
        image = pyvips.Image.new_from_buffer(body, "", n=-1)
        assert (image.width, image.height) == (16, 16)
        assert not image.get_typeof("n-pages") or image.get("n-pages") == 1


def _truncated_jpeg() -> bytes:
    data = jpeg(256, 256)
    return data[: len(data) // 2]


@pytest.mark.parametrize("query", ["w=10", "w=256", "fm=png", "w=100&fm=webp", "rot=90", "trim=auto"])
async def test_r17_truncated_jpeg(client, store, query):
    store("cut.jpg", _truncated_jpeg())
    async with client.get(f"/cut.jpg?{query}") as resp:
        await expect_error(resp, 422, "corrupt_image")


def _truncated_png() -> bytes:
    data = encode(quadrants(256, 256), ".png")
    return data[: len(data) // 2]


async def test_r17_truncated_png(client, store):
    store("cut.png", _truncated_png())
    async with client.get("/cut.png?w=10") as resp:
        await expect_error(resp, 422, "corrupt_image")


@pytest.mark.parametrize(
    "target", ["/cut.jpg?fm=json", "/cut.png?fm=json", "/p.png?mark=cut.jpg", "/p.png?mark=cut.png"]
)
async def test_r17_truncated_source_via_thumbnail(client, store, target):
    store("cut.jpg", _truncated_jpeg())
    store("cut.png", _truncated_png())
    store("p.png", png(64, 48))
    async with client.get(target) as resp:
        await expect_error(resp, 422, "corrupt_image")


ODD_BYTES = {
    "random": random.Random(18).randbytes(4096),
    "empty": b"",
    "one-byte": b"\xff",
    "text": b"hello, world\n",
}


@pytest.mark.parametrize("name", list(ODD_BYTES))
async def test_r18_not_an_image(client, store, name):
    store(f"odd/{name}.jpg", ODD_BYTES[name])
    for query in ("", "?w=10", "?fm=json"):
        async with client.get(f"/odd/{name}.jpg{query}") as resp:
            await expect_error(resp, 415, "unsupported_media_type")


MAGIC_THEN_GARBAGE = {
    "png": b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(512),
    "jpg": b"\xff\xd8\xff" + b"\x00" * 512,
    "gif": b"GIF89a" + random.Random(2).randbytes(64),
    "webp": b"RIFF\x40\x00\x00\x00WEBPVP8 " + random.Random(3).randbytes(64),
    "avif": b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00avifmif1" + random.Random(4).randbytes(64),
    "gif-html-polyglot": b"GIF89a<html><script>alert(1)</script></html>",
}


@pytest.mark.parametrize("name", list(MAGIC_THEN_GARBAGE))
async def test_r18_magic_then_garbage(client, store, name):
    store(f"odd/{name}", MAGIC_THEN_GARBAGE[name])
    async with client.get(f"/odd/{name}?w=10") as resp:
        await expect_error(resp, 422, "corrupt_image")


async def test_r18_polyglot_original_is_never_sniffable(client, store):
    store("poly.gif", MAGIC_THEN_GARBAGE["gif-html-polyglot"])
    async with client.get("/poly.gif") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/gif"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Content-Security-Policy"] == CSP


@pytest.mark.parametrize("key", list(foreign_sources()))
async def test_r19_foreign_format_refused(client, store, key):
    store(key, foreign_sources()[key])
    store("p.png", png())
    for target in (f"/{key}", f"/{key}?w=10", f"/{key}?fm=json", f"/{key}?dl=x.png", f"/p.png?mark={key}"):
        async with client.get(target) as resp:
            await expect_error(resp, 415, "unsupported_media_type")


@pytest.mark.parametrize("key", ["evil.svg", "scan.tiff", "old.bmp", "doc.pdf", "layers.psd"])
def test_r19_b2_loader_blocked_in_libvips(key):
    harden()
    with pytest.raises(pyvips.Error):
        pyvips.Image.new_from_buffer(foreign_sources()[key], "").avg()


async def test_r20_extension_is_irrelevant(client, store):
    store("renamed.jpg", png(64, 48))
    store("renamed.png", jpeg(64, 48))
    for key, fmt in (("renamed.jpg", "png"), ("renamed.png", "jpg")):
        for query in ("", "?w=10"):
            async with client.get(f"/{key}{query}") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == ("image/png" if fmt == "png" else "image/jpeg")
                assert magic(await resp.read()) == fmt


# --------------------------------------------------------------------------- R21-R22 load


def big_png() -> bytes:
    return encode(quadrants(4000, 4000), ".png", compression=1)


SLOW = "w=3999&blur=2000&fm=png"  # about 0.5 s: decode 16 MP, blur, encode 16 MP


async def test_r21_render_timeout_releases_slot(make_client, store):
    store("big.png", big_png())
    store("p.png", png())
    client = await make_client(render_timeout=0.05)
    started = time.perf_counter()
    async with client.get(f"/big.png?{SLOW}") as resp:
        await expect_error(resp, 503, "render_timeout")
        assert resp.headers["Retry-After"] == RETRY_AFTER
    assert time.perf_counter() - started < 1.0
    await wait_for_idle(client)
    renders = client.app[POOL].renders
    async with client.get(f"/big.png?{SLOW}") as resp:  # nothing was cached: it renders again
        await expect_error(resp, 503, "render_timeout")
    assert client.app[POOL].renders == renders + 1
    await wait_for_idle(client)
    status, _, body = await fetch(client, "/p.png?w=10")
    assert status == 200 and decode(body).width == 10


async def test_r22_queue_full(make_client, store):
    store("big.png", big_png())
    client = await make_client(render_workers=1, render_queue=0)

    async def one(width: int):
        async with client.get(f"/big.png?w={width}&blur=2000&fm=png") as resp:
            return resp.status, resp.headers.copy(), await resp.read()

    results = await asyncio.gather(*(one(3999 - i) for i in range(3)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
    for status, headers, body in results:
        if status == 503:
            assert json.loads(body)["error"]["code"] == "overloaded"
            assert headers["Retry-After"] == RETRY_AFTER
            assert headers["Cache-Control"] == "no-store"
            assert headers["Content-Type"].startswith("application/json")
    await wait_for_idle(client)


# --------------------------------------------------------------------------- R27-R28


async def test_r27_object_replaced(client, store, data_dir):
    store("p.png", png(64, 48))
    _, first, body = await fetch(client, "/p.png?fm=png")
    assert (decode(body).width, decode(body).height) == (64, 48)
    _, first_original, _ = await fetch(client, "/p.png")

    # Replaced the way writers do: a new file renamed over the old one, same size.
    same_size = encode(flat(64, 48, (10, 200, 10)), ".png")
    tmp = data_dir / ".tmp-replace"
    tmp.write_bytes(same_size)
    os.replace(tmp, data_dir / "p.png")
    status, second, body = await fetch(client, "/p.png?fm=png")
    assert status == 200 and second["ETag"] != first["ETag"]
    assert decode(body).getpoint(0, 0)[:3] == [10, 200, 10]
    status, second_original, original = await fetch(client, "/p.png")
    assert second_original["ETag"] != first_original["ETag"] and original == same_size

    # Rewritten in place with a different size.
    store("p.png", png(32, 16))
    status, third, body = await fetch(client, "/p.png?fm=png")
    assert status == 200 and third["ETag"] not in (first["ETag"], second["ETag"])
    assert (decode(body).width, decode(body).height) == (32, 16)


async def test_r28_image_headers(client, store):
    store("p.png", png())
    for target in ("/p.png", "/p.png?w=10", "/p.png?fm=json"):
        async with client.get(target) as resp:
            assert resp.status == 200
            h = resp.headers
            assert h["X-Content-Type-Options"] == "nosniff"
            assert h["Content-Security-Policy"] == CSP
            assert max_age(h["Cache-Control"]) >= 86400
            assert re.fullmatch(r'"[0-9a-f]{32}"', h["ETag"])
    async with client.get("/p.png?w=10&fm=webp") as resp:
        assert resp.headers["Content-Type"] == "image/webp" and magic(await resp.read()) == "webp"
    async with client.get("/p.png?fm=json") as resp:
        assert resp.content_type == "application/json"


DOWNLOAD_NAMES = [
    'my "pic"; filename=evil.exe.png',
    "café — 写真.png",
    "a\\b/../c;d,e.png",
    "<script>alert(1)</script>.png",
    "'single' & =%20.png",
]


@pytest.mark.parametrize("name", DOWNLOAD_NAMES, ids=range(len(DOWNLOAD_NAMES)))
async def test_r28_download_name_sanitised(client, store, name):
    store("p.png", png())
    etags = set()
    for base in ("/p.png?", "/p.png?w=10&"):
        async with client.get(base + "dl=" + quote(name, safe="")) as resp:
            assert resp.status == 200
            cd = resp.headers["Content-Disposition"]
            etags.add(resp.headers["ETag"])
        assert "\r" not in cd and "\n" not in cd and cd.isascii()
        match = re.fullmatch(r'attachment; filename="([^"\\;]*)"; filename\*=UTF-8\'\'([A-Za-z0-9%._~-]*)', cd)
        assert match, cd
        assert all(0x20 <= ord(c) < 0x7F for c in match.group(1))
        assert unquote(match.group(2)) == name
    async with client.get("/p.png?w=10") as resp:
        assert resp.headers["ETag"] in etags  # dl= is not part of the variant


@pytest.mark.parametrize(
    "value", ["a%0D%0ASet-Cookie:%20x=1", "a%00b", "", "x" * 300], ids=["crlf", "nul", "empty", "too-long"]
)
async def test_r28_download_name_refused(client, store, value):
    store("p.png", png())
    async with await raw_get(client, f"/p.png?dl={value}") as resp:
        await expect_error(resp, 400, "invalid_param")


async def test_r28_method_not_allowed_is_json(client, store):
    store("p.png", png())
    async with client.patch("/p.png", data=b"x") as resp:
        await expect_error(resp, 405, "method_not_allowed")
        assert "GET" in resp.headers["Allow"]


# --------------------------------------------------------------------------- the batch, then health


HOSTILE_BATCH = [
    ("/p.png?wdth=100", 400),
    ("/p.png?w=100&w=200", 400),
    ("/p.png?w=1e3", 400),
    ("/p.png?w=%D9%A1%D9%A0%D9%A0", 400),
    ("/p.png?q=101", 200),
    ("/p.png?fm=svg", 400),
    ("/p.png?w=300000&h=1&fit=scale", 400),
    ("/p.png?w=0.0000001", (200, 400)),
    ("/p.png?rect=63,47,1000000,1000000", 200),
    ("/p.png?ar=100:1&fit=crop&w=4096", 200),
    ("/p.png?mark=p.png&mark-pad=2048&mark-scale=100", 200),
    ("/p.png?trim=auto&trim-tol=255&w=10", 200),
    ("/p.png?fit=crop&crop=entropy&w=1&h=4096", 200),
    ("/p.png?dl=%22%3B%0D%0A", 400),
    *((target, 400) for target in BAD_KEYS.values()),
    ("/missing.png?w=10", 404),
    ("/bomb.png?w=10", 422),
    ("/huge.png?w=10", 422),
    ("/cut.jpg?w=10", 422),
    ("/random.jpg?w=10", 415),
    ("/empty.png", 415),
    ("/evil.svg", 415),
    ("/evil.svg?w=10", 415),
    ("/scan.tiff?w=10", 415),
    ("/renamed.jpg?w=10", 200),
]


async def test_hostile_batch_then_healthy(client, store, caplog):
    store("p.png", png(64, 48))
    store("bomb.png", png_header_only(64250, 64250))
    store("huge.png", png_header_only(16384, 16384))
    store("cut.jpg", _truncated_jpeg())
    store("random.jpg", ODD_BYTES["random"])
    store("empty.png", b"")
    store("evil.svg", SVG_SCRIPT)
    store("scan.tiff", foreign_sources()["scan.tiff"])
    store("renamed.jpg", png())
    for target, expected in HOSTILE_BATCH:
        status, headers, _ = await fetch(client, target)
        assert status in (expected if isinstance(expected, tuple) else (expected,)), (target, status)
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    await wait_for_idle(client)
    async with client.get("/_/health") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"
    status, _, body = await fetch(client, "/p.png?w=10")
    assert status == 200 and decode(body).width == 10


# --------------------------------------------------------------------------- boot checks


BAD_SETTINGS = {
    "render_timeout": [0, -1, math.nan],
    "render_queue": [-1],
    "render_workers": [0],
    "max_source_pixels": [0, -5],
    "max_source_side": [0],
    "max_frames": [0],
    "max_animation_pixels": [0],
    "max_output_side": [0],
    "max_dpr": [0],
    "retry_after": [0],
    "metadata_ttl": [-1],
    "cache_bytes": [-1],
}


@pytest.mark.parametrize(
    ("field", "value"),
    [(field, value) for field, values in BAD_SETTINGS.items() for value in values],
    ids=lambda v: str(v),
)
def test_b5_bad_limits_refused(tmp_path, monkeypatch, field, value):
    monkeypatch.delenv("IMAGE_ORIGIN_CONFIG", raising=False)
    with pytest.raises(ValidationError):
        Settings(storage_url=f"file://{tmp_path}", **{field: value})
    config = tmp_path / "settings.yaml"
    config.write_text(f"{field}: {'.nan' if isinstance(value, float) and math.isnan(value) else value}\n")
    with pytest.raises(ConfigError, match=field):
        load_settings(config)


def test_b5_bad_limit_from_environment_refused(tmp_path, monkeypatch):
    config = tmp_path / "settings.yaml"
    config.write_text("{}\n")
    monkeypatch.setenv("IMAGE_ORIGIN_RENDER_QUEUE", "-1")
    with pytest.raises(ConfigError, match="render_queue"):
        load_settings(config)


def test_b2_svg_and_tiff_blocked_after_harden():
    harden()
    tiff = pyvips.Image.black(2, 2).tiffsave_buffer()
    for data in (SVG_SCRIPT, tiff):
        with pytest.raises(pyvips.Error):
            pyvips.Image.new_from_buffer(data, "").avg()
    assert decode(png(4, 4)).width == 4  # the loaders we accept still work


def test_b2_harden_refuses_when_a_loader_leaks(monkeypatch):
    monkeypatch.setattr(security, "ALLOWED_LOADERS", (*security.ALLOWED_LOADERS, "VipsForeignLoadTiff"))
    try:
        with pytest.raises(UnsafeLibvips, match="TIFF"):
            harden()
    finally:
        monkeypatch.undo()
        harden()
    with pytest.raises(pyvips.Error):
        pyvips.Image.new_from_buffer(pyvips.Image.black(2, 2).tiffsave_buffer(), "").avg()


def test_b1_old_libvips_refused(monkeypatch):
    monkeypatch.setattr(pyvips, "version", lambda part: (8, 12, 0)[part])
    with pytest.raises(UnsafeLibvips):
        harden()
