"""What an operator reads (issue 8, items 11 and 14): request ids, 5xx logged once with the
cause, the access log (text and JSON), libvips warnings at debug level and counted."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import pyvips
from aiohttp import FormData

from tests.images import encode, jpeg, quadrants
from tests.live import free_port, wait_healthy

UUID_HEX = re.compile(r"[0-9a-f]{32}")


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "origin.http" and r.levelno >= logging.WARNING]


def bad_resolution_unit_jpeg() -> bytes:
    """A JPEG whose EXIF ResolutionUnit is 5 (only 1-3 exist): libvips warns on every load."""
    image = quadrants(64, 48).copy()
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-ResolutionUnit", "2")
    data = encode(image, ".jpg")
    tag = b"\x28\x01\x03\x00\x01\x00\x00\x00"  # tag 0x0128 ResolutionUnit, SHORT, count 1 (little-endian)
    at = data.index(tag) + len(tag)
    return data[:at] + b"\x05\x00" + data[at + 2 :]


async def test_request_id_is_echoed_made_or_replaced(client, store):
    store("a.jpg", jpeg(40, 30))
    async with client.get("/a.jpg?w=20", headers={"X-Request-ID": "edge-1234:abc/DEF=="}) as resp:
        assert resp.status == 200
        assert resp.headers["X-Request-ID"] == "edge-1234:abc/DEF=="
        etag = resp.headers["ETag"]
    async with client.get("/a.jpg?w=20", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
        assert UUID_HEX.fullmatch(resp.headers["X-Request-ID"])
    for hostile in ("x" * 129, "a b", "<script>", "id;rm -rf", "é"):
        async with client.get("/_/health", headers={"X-Request-ID": hostile}) as resp:
            assert resp.status == 200
            assert UUID_HEX.fullmatch(resp.headers["X-Request-ID"]), hostile
    async with client.get("/a.jpg") as first, client.get("/a.jpg") as second:
        assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


async def test_error_bodies_carry_the_request_id(make_client, store):
    client = await make_client(tokens=["a-long-enough-token-0123456789"])
    cases = [
        ("GET", "/a.jpg?w=abc", {}, 400, "invalid_param"),
        ("GET", "/missing.jpg", {}, 404, "not_found"),
        ("POST", "/x", {}, 401, "unauthorized"),  # the management wrapper's errors
        ("PATCH", "/a.jpg", {}, 405, "method_not_allowed"),  # aiohttp's own HTTP errors
    ]
    store("a.jpg", jpeg(40, 30))
    for method, path, headers, status, code in cases:
        async with client.request(method, path, headers={"X-Request-ID": f"r-{status}", **headers}) as resp:
            assert resp.status == status, path
            assert resp.content_type == "application/json"
            error = (await resp.json())["error"]
            assert error["code"] == code
            assert error["request_id"] == resp.headers["X-Request-ID"] == f"r-{status}"


async def test_a_5xx_is_logged_once_with_its_cause(aiohttp_client, s3_url, monkeypatch, caplog):
    """S3 without credentials: 502, and the log says NoCredentialsError (the cause is kept)."""
    from origin.app import create_app
    from origin.settings import Settings

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    client = await aiohttp_client(create_app(Settings(storage_url=s3_url, tokens=["t" * 32], render_workers=1)))
    caplog.set_level(logging.INFO)
    async with client.get("/a.jpg?w=10", headers={"X-Request-ID": "req-502"}) as resp:
        assert resp.status == 502
        body = await resp.json()
        assert body["error"]["code"] == "storage_error" and body["error"]["request_id"] == "req-502"
    form = FormData()
    form.add_field("data", jpeg(), filename="a.jpg", content_type="image/jpeg")
    async with client.post("/f", data=form, headers={"Authorization": "Bearer " + "t" * 32}) as resp:
        assert resp.status == 502
        upload_id = resp.headers["X-Request-ID"]
    records = _errors(caplog)
    assert [r.request_id for r in records] == ["req-502", upload_id]  # once each
    for record in records:
        assert record.levelno == logging.ERROR and record.status == 502
        assert "NoCredentialsError" in record.getMessage() and record.request_id in record.getMessage()
        assert record.cause == ["NoCredentialsError: Unable to locate credentials"]


async def test_client_errors_are_not_logged_as_failures(client, caplog):
    caplog.set_level(logging.INFO)
    async with client.get("/missing.jpg?w=10") as resp:
        assert resp.status == 404
    assert _errors(caplog) == []


async def test_access_log_is_off_by_default_and_one_line_per_request(make_client, store, caplog):
    store("a.jpg", jpeg(40, 30))
    caplog.set_level(logging.INFO)
    quiet = await make_client()
    async with quiet.get("/a.jpg") as resp:
        assert resp.status == 200
    assert not [r for r in caplog.records if r.name == "origin.access"]

    loud = await make_client(access_log=True)
    async with loud.get("/a.jpg?w=20", headers={"User-Agent": 'ua "quoted"', "X-Request-ID": "rid-1"}) as resp:
        size = len(await resp.read())
    async with loud.get("/nope.jpg") as resp:
        await resp.read()
    lines = [r.getMessage() for r in caplog.records if r.name == "origin.access"]
    assert len(lines) == 2
    combined = re.compile(
        r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET (\S+) HTTP/1\.1" (\d{3}) (\d+) '
        r'"(.*)" "(.*)" (\d+\.\d{3}) (\S+)'
    )
    first, second = (combined.fullmatch(line) for line in lines)
    assert first and second, lines
    assert first.groups()[:3] == ("/a.jpg?w=20", "200", str(size))
    assert first.group(5) == 'ua \\"quoted\\"' and first.group(7) == "rid-1"
    assert second.group(2) == "404" and UUID_HEX.fullmatch(second.group(7))


async def test_libvips_warnings_are_debug_and_counted(make_client, store, caplog):
    store("unit.jpg", bad_resolution_unit_jpeg())
    client = await make_client(metrics_public=True)
    caplog.set_level(logging.DEBUG)

    async def warnings_total() -> float:
        async with client.get("/_/metrics") as resp:
            text = await resp.text()
        return float(re.search(r"^image_origin_libvips_warnings_total (\S+)$", text, re.M).group(1))

    before = await warnings_total()
    async with client.get("/unit.jpg?w=20&fm=png") as resp:
        assert resp.status == 200
    assert await warnings_total() > before
    vips = [r for r in caplog.records if "EXIF resolution unit" in r.getMessage()]
    assert vips and all(r.levelno == logging.DEBUG and r.name == "origin.vips" for r in vips)


def test_json_logs_and_access_log_through_the_cli(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jpg").write_bytes(jpeg(40, 30))
    port = free_port()
    env = {
        **os.environ,
        "IMAGE_ORIGIN_STORAGE_URL": f"file://{data}",
        "IMAGE_ORIGIN_PORT": str(port),
        "IMAGE_ORIGIN_LOG_FORMAT": "json",
        "IMAGE_ORIGIN_ACCESS_LOG": "true",
        "IMAGE_ORIGIN_TOKENS": "a-long-enough-token-0123456789",
    }
    proc = subprocess.Popen([sys.executable, "-m", "origin"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:

        async def traffic() -> None:
            await wait_healthy(f"http://127.0.0.1:{port}", proc)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/a.jpg?w=10", headers={"X-Request-ID": "j-1"}) as r:
                    assert r.status == 200

        asyncio.run(traffic())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    entries = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # every line is JSON
    access = [e for e in entries if e["logger"] == "origin.access" and e.get("request_id") == "j-1"]
    assert len(access) == 1
    assert access[0]["status"] == 200 and access[0]["method"] == "GET" and access[0]["path"] == "/a.jpg?w=10"
    assert access[0]["bytes"] > 0 and access[0]["duration"] >= 0
    assert any(e["logger"] == "origin" and e["level"] == "INFO" for e in entries)
