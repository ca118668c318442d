"""What a CDN and a browser see: headers, conditionals, ranges, HEAD, CORS, negotiation."""

from __future__ import annotations

import os
from email.utils import formatdate

from origin.http.appkeys import POOL
from tests.images import decode, jpeg, magic, png


async def test_variant_headers(client, store):
    store("shoes/red shoe.jpg", jpeg(80, 60))
    async with client.get("/shoes/red%20shoe.jpg?w=40") as resp:
        assert resp.status == 200
        h = resp.headers
        assert h["Content-Type"] == "image/jpeg"
        assert int(h["Content-Length"]) == len(await resp.read())
        assert h["ETag"].startswith('"') and h["ETag"].endswith('"') and not h["ETag"].startswith("W/")
        assert "max-age=31536000" in h["Cache-Control"]
        assert "stale-while-revalidate" in h["Cache-Control"] and "stale-if-error" in h["Cache-Control"]
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Cache-Tag"] == "shoes/red%20shoe.jpg" == h["Surrogate-Key"]
        assert h["Access-Control-Allow-Origin"] == "*"
        assert "Vary" not in h
        assert h["X-Cache"] == "miss"
        assert "render;dur=" in h["Server-Timing"] and "storage;dur=" in h["Server-Timing"]
        assert "Last-Modified" in h
    async with client.get("/shoes/red%20shoe.jpg?w=40") as resp:
        assert resp.headers["X-Cache"] == "memory"


async def test_etag_changes_with_spec_and_not_with_order(client, store):
    store("p.png", png(64, 64))
    etags = {}
    for query in ("w=32&h=16&fit=crop", "fit=crop&h=16&w=32", "w=32.0&fit=crop&h=16&ixlib=js-3.8.0"):
        async with client.get(f"/p.png?{query}") as resp:
            etags[query] = (resp.headers["ETag"], await resp.read())
    assert len(set(etags.values())) == 1
    async with client.get("/p.png?w=33&h=16&fit=crop") as resp:
        assert resp.headers["ETag"] != next(iter(etags.values()))[0]


async def test_if_none_match_gives_304_without_rendering(client, store):
    store("p.png", png())
    async with client.get("/p.png?w=20") as resp:
        etag = resp.headers["ETag"]
    renders = client.app[POOL].renders
    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        async with client.get("/p.png?w=20", headers={"If-None-Match": header}) as resp:
            assert resp.status == 304
            assert resp.headers["ETag"] == etag
            assert await resp.read() == b""
    async with client.get("/p.png?w=21", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 200
    assert client.app[POOL].renders == renders + 1


async def test_if_modified_since(client, store):
    path = store("p.png", png())
    os.utime(path, (1_700_000_000, 1_700_000_000))
    later = formatdate(1_700_000_100, usegmt=True)
    earlier = formatdate(1_600_000_000, usegmt=True)
    async with client.get("/p.png", headers={"If-Modified-Since": later}) as resp:
        assert resp.status == 304
    async with client.get("/p.png?w=10", headers={"If-Modified-Since": later}) as resp:
        assert resp.status == 304
    async with client.get("/p.png", headers={"If-Modified-Since": earlier}) as resp:
        assert resp.status == 200
        assert resp.headers["Last-Modified"] == formatdate(1_700_000_000, usegmt=True)
    async with client.get("/p.png", headers={"If-Modified-Since": "garbage"}) as resp:
        assert resp.status == 200


async def test_original_is_byte_for_byte_with_sniffed_type(client, store):
    data = png(30, 20)
    store("renamed.jpg", data)
    async with client.get("/renamed.jpg") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.headers["Accept-Ranges"] == "bytes"
        assert await resp.read() == data


async def test_range_on_original(client, store):
    data = jpeg(64, 64)
    store("r.jpg", data)
    async with client.get("/r.jpg", headers={"Range": "bytes=0-9"}) as resp:
        assert resp.status == 206
        assert await resp.read() == data[:10]
        assert resp.headers["Content-Range"] == f"bytes 0-9/{len(data)}"
    async with client.get("/r.jpg", headers={"Range": "bytes=-5"}) as resp:
        assert resp.status == 206 and await resp.read() == data[-5:]
    async with client.get("/r.jpg", headers={"Range": "bytes=10-"}) as resp:
        assert resp.status == 206 and await resp.read() == data[10:]
    async with client.get("/r.jpg", headers={"Range": f"bytes={len(data)}-"}) as resp:
        assert resp.status == 416
        assert resp.headers["Content-Range"] == f"bytes */{len(data)}"
        assert (await resp.json())["error"]["code"] == "range_not_satisfiable"
    async with client.get("/r.jpg", headers={"Range": "bytes=0-1,5-6"}) as resp:
        assert resp.status == 200 and await resp.read() == data
    async with client.get("/r.jpg", headers={"Range": "bytes=0-9", "If-Range": '"stale"'}) as resp:
        assert resp.status == 200


async def test_head_matches_get(client, store):
    store("h.jpg", jpeg())
    async with client.get("/h.jpg?w=16&fm=webp") as resp:
        get_headers = resp.headers
        body = await resp.read()
    async with client.head("/h.jpg?w=16&fm=webp") as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] == get_headers["ETag"]
        assert resp.headers["Content-Type"] == "image/webp"
        assert int(resp.headers["Content-Length"]) == len(body)
        assert await resp.read() == b""


async def test_auto_format_negotiates_and_varies(client, store):
    store("n.jpg", jpeg())
    cases = {
        "image/avif,image/webp,*/*": "avif",
        "image/webp,*/*;q=0.8": "webp",
        "image/avif;q=0,image/webp": "webp",
        "text/html,*/*": "jpg",
        "": "jpg",
    }
    for accept, expected in cases.items():
        async with client.get("/n.jpg?w=20&auto=format", headers={"Accept": accept}) as resp:
            assert resp.status == 200
            assert magic(await resp.read()) == expected, accept
            assert resp.headers["Vary"] == "Accept"
    async with client.get("/n.jpg?w=20&auto=format&fm=png", headers={"Accept": "image/avif"}) as resp:
        assert magic(await resp.read()) == "png"
        assert "Vary" not in resp.headers


async def test_auto_format_keeps_png_for_alpha_on_legacy_clients(client, store):
    store("a.png", png())
    async with client.get("/a.png?w=20&auto=format", headers={"Accept": "*/*"}) as resp:
        assert magic(await resp.read()) == "png"


async def test_json_metadata(client, store):
    store("m.jpg", jpeg(64, 48))
    async with client.get("/m.jpg?fm=json") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        body = await resp.json()
    assert body["width"] == 64 and body["height"] == 48 and body["format"] == "jpg"
    assert body["has_alpha"] is False and body["dominant_color"].startswith("#")


async def test_download_name(client, store):
    store("d.jpg", jpeg())
    async with client.get("/d.jpg?dl=my%20photo.jpg") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Disposition"].startswith('attachment; filename="my photo.jpg"')
    async with client.get("/d.jpg?w=10&dl=caf%C3%A9.jpg") as resp:
        assert "filename*=UTF-8''caf%C3%A9.jpg" in resp.headers["Content-Disposition"]


async def test_cors_origin_is_configurable(make_client, store):
    client = await make_client(cors_origin="https://app.example")
    store("c.jpg", jpeg())
    async with client.get("/c.jpg") as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"


async def test_cache_control_is_configurable_and_short_for_errors(make_client, store):
    client = await make_client(cache_control="public, max-age=60", error_cache_control="public, max-age=5")
    store("c.jpg", jpeg())
    async with client.get("/c.jpg?w=10") as resp:
        assert resp.headers["Cache-Control"] == "public, max-age=60"
    async with client.get("/missing.jpg") as resp:
        assert resp.status == 404
        assert resp.headers["Cache-Control"] == "public, max-age=5"


async def test_metadata_ttl_hides_source_reads(make_client, store):
    client = await make_client(metadata_ttl=60)
    path = store("t.jpg", jpeg(40, 40))
    async with client.get("/t.jpg?w=10") as resp:
        first = resp.headers["ETag"]
    path.unlink()
    async with client.get("/t.jpg?w=10") as resp:
        # Served from memory: the source version is trusted for metadata_ttl seconds.
        assert resp.status == 200 and resp.headers["ETag"] == first


async def test_fractional_width_and_dpr(client, store):
    store("f.png", png(100, 50))
    async with client.get("/f.png?w=0.5") as resp:
        image = decode(await resp.read())
        assert (image.width, image.height) == (50, 25)
    async with client.get("/f.png?w=20&dpr=2") as resp:
        assert decode(await resp.read()).width == 40


async def test_watermark_from_storage(client, store):
    from tests.images import RED, close, encode, flat, pixel, quadrants

    store("base.png", encode(quadrants(200, 100), ".png"))
    store("marks/logo.png", encode(flat(20, 20, (0, 0, 0)), ".png"))
    async with client.get("/base.png?mark=marks/logo.png&mark-pad=0&fm=png") as resp:
        assert resp.status == 200
        body = await resp.read()
    assert close(pixel(body, 195, 95), (0, 0, 0))  # bottom-right corner: the mark
    assert close(pixel(body, 175, 75), (255, 255, 255))  # just outside it: the image
    async with client.get("/base.png?mark=marks/logo.png&mark-align=top,left&mark-pad=0&fm=png") as resp:
        body = await resp.read()
    assert close(pixel(body, 5, 5), (0, 0, 0)) and close(pixel(body, 30, 30), RED)
    etag = resp.headers["ETag"]
    store("marks/logo.png", encode(flat(10, 10, (0, 0, 0)), ".png"))
    async with client.get("/base.png?mark=marks/logo.png&mark-align=top,left&mark-pad=0&fm=png") as resp:
        assert resp.headers["ETag"] != etag  # the mark's version is part of the variant
    async with client.get("/base.png?mark=marks/none.png") as resp:
        assert resp.status == 400
        assert "mark" in (await resp.json())["error"]["message"]


async def test_oversized_source_is_refused_before_reading(make_client, store):
    client = await make_client(max_source_bytes=1000)
    store("big.png", png(200, 200) + b"\0" * 2000)
    for target in ("/big.png", "/big.png?w=10"):
        async with client.get(target) as resp:
            assert resp.status == 422
            assert (await resp.json())["error"]["code"] == "image_too_large"


async def test_storage_timeout_is_504_and_failure_502(make_client, monkeypatch):
    import asyncio
    import socket

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    try:
        cases = (
            (silent.getsockname()[1], 0.5, 504, "storage_timeout"),
            (closed.getsockname()[1], 8, 502, "storage_error"),
        )
        for port, timeout, status, code in cases:
            client = await make_client(
                storage_url=f"s3://bucket?endpoint_url=http://127.0.0.1:{port}&region=us-east-1",
                storage_timeout=timeout,
            )
            async with asyncio.timeout(10):
                async with client.get("/a.jpg?w=10") as resp:
                    assert resp.status == status
                    assert (await resp.json())["error"]["code"] == code
                    assert resp.headers["Cache-Control"] == "no-store"
    finally:
        silent.close()
        closed.close()
