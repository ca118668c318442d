"""Connections under attack (issue 8 items 3 and 10): deadlines, the cap, aiohttp's own errors.

Every test runs the real server (origin/server.py: the socket it owns and its watchdog)
on a free port and attacks it with raw sockets, the way a slowloris client would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from origin.app import create_app
from origin.server import OriginServer
from tests.images import decode, png

TOKEN = "t" * 40


@pytest.fixture
async def serve(make_settings):
    servers: list[OriginServer] = []

    async def start(**overrides) -> OriginServer:
        settings = make_settings(tokens=[TOKEN], **overrides)
        server = OriginServer(create_app(settings), settings.configs().connections, access_log=None)  # as `serve`
        await server.start(host="127.0.0.1", port=0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


async def connect(server: OriginServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def exchange(server: OriginServer, raw: bytes, timeout: float = 5) -> bytes:
    """Send `raw`, read until the server closes the connection."""
    reader, writer = await connect(server)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(timeout):
            return await reader.read()
    finally:
        writer.close()


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before closing. A reset is a close too: a server that closes while
    our unread trickle sits in its receive buffer answers with RST, as the kernel must."""
    async with asyncio.timeout(seconds):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""


async def healthy(server: OriginServer) -> bool:
    status, _, body = parse(await exchange(server, b"GET /_/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    return status == 200 and json.loads(body)["status"] == "ok"


async def test_headers_sent_a_byte_at_a_time_are_cut_at_the_deadline(serve, store):
    store("p.png", png())
    server = await serve(header_timeout=0.5)
    reader, writer = await connect(server)
    started = time.monotonic()
    writer.write(b"GET /p.png HTTP/1.1\r\n")

    async def trickle() -> None:
        for byte in b"X-Slow: " + b"a" * 100:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1)

    trickling = asyncio.ensure_future(trickle())
    try:
        assert await healthy(server)  # others are served meanwhile
        assert await closed_within(reader, 4) == b""  # closed, nothing answered
        assert 0.5 <= time.monotonic() - started < 3
    finally:
        trickling.cancel()
        writer.close()


async def test_idle_keep_alive_is_closed(serve):
    server = await serve(keepalive_timeout=0.5)
    reader, writer = await connect(server)
    writer.write(b"GET /_/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    await closed_within(reader, 3)
    assert time.monotonic() - started < 2.5
    writer.close()


async def test_put_that_sends_less_than_it_declares_gets_408(serve):
    server = await serve(body_timeout=0.5)
    head = f"PUT /a.png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n"
    reader, writer = await connect(server)
    writer.write(head.encode() + b"0123456789")
    raw = await closed_within(reader, 4)
    writer.close()
    status, headers, body = parse(raw)
    assert status == 408
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]["code"] == "request_timeout"


async def test_chunked_body_trickling_is_cut(serve):
    server = await serve(body_timeout=0.5)
    head = (
        "POST /products HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    reader, writer = await connect(server)
    writer.write(head.encode())

    async def trickle() -> None:
        for byte in b'--b\r\nContent-Disposition: form-data; name="data"; filename="a.png"\r\n\r\n' + b"x" * 200:
            writer.write(b"1\r\n" + bytes([byte]) + b"\r\n")
            await asyncio.sleep(0.1)  # 10 bytes a second

    trickling = asyncio.ensure_future(trickle())
    try:
        raw = await closed_within(reader, 4)
    finally:
        trickling.cancel()
        writer.close()
    status, _, body = parse(raw)
    assert status == 408 and json.loads(body)["error"]["code"] == "request_timeout"


async def test_connections_past_the_cap_get_a_cheap_503(serve):
    server = await serve(max_connections=5)
    held = [await connect(server) for _ in range(5)]
    try:
        await asyncio.sleep(0.1)
        status, headers, body = parse(await exchange(server, b"GET /_/health HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert status == 503 and headers["retry-after"] == "2"
        assert headers["x-content-type-options"] == "nosniff"
        assert json.loads(body)["error"]["code"] == "overloaded"
    finally:
        for _, writer in held:
            writer.close()
    deadline = time.monotonic() + 3
    while not await healthy(server):  # the held connections are gone: served again
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"GET /p.png HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n", 431, "header_too_large"),
        (b"GET /<script>alert(1)</script> HTTP/9.9\r\n\r\n", 400, "bad_request"),
        (b"\x16\x03\x01\x02\x00<script>\r\n\r\n", 400, "bad_request"),
        (b"G@T /p.png HTTP/1.1\r\n\r\n", 400, "bad_request"),
    ],
)
async def test_aiohttp_own_errors_are_json_and_echo_nothing(serve, caplog, raw, status, code):
    server = await serve()
    caplog.set_level(logging.DEBUG)
    answer_status, headers, body = parse(await exchange(server, raw))
    assert answer_status == status
    assert headers["content-type"].startswith("application/json")
    assert headers["x-content-type-options"] == "nosniff"
    error = json.loads(body)["error"]
    assert {"code", "message"} <= set(error) and error["code"] == code
    assert b"aaaa" not in body and b"bbbb" not in body and b"script" not in body
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_absolute_form_target_is_served(serve, store):
    store("p.png", png(64, 48))
    server = await serve()
    raw = b"GET http://img.example.com/p.png?w=10 HTTP/1.1\r\nHost: img.example.com\r\nConnection: close\r\n\r\n"
    status, headers, body = parse(await exchange(server, raw))
    assert status == 200 and decode(body).width == 10
    raw = b"GET http://img.example.com/p.png HTTP/1.1\r\nHost: img.example.com\r\nConnection: close\r\n\r\n"
    status, headers, body = parse(await exchange(server, raw))
    assert status == 200 and body == png(64, 48)
    raw = b"GET http://img.example.com/%2e%2e/p.png HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, _, body = parse(await exchange(server, raw))
    assert status == 400 and json.loads(body)["error"]["code"] == "invalid_key"


async def test_many_trickling_connections_neither_stop_service_nor_grow_the_log(serve, store, caplog):
    store("p.png", png())
    server = await serve(header_timeout=1)
    caplog.set_level(logging.INFO)
    attackers = [await connect(server) for _ in range(300)]
    for _, writer in attackers:
        writer.write(b"GET /p.png HTTP/1.1\r\nX-A: ")
    try:
        served = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            for reader, writer in attackers:
                if not (writer.is_closing() or reader.at_eof()):
                    writer.write(b"a")
            assert await healthy(server)
            served += 1
            await asyncio.sleep(0.2)
        closed = 0
        for reader, _ in attackers:
            try:
                closed += await closed_within(reader, 2) == b""
            except ConnectionError:
                closed += 1  # our next byte met the closed socket first
        assert closed == len(attackers)
    finally:
        for _, writer in attackers:
            writer.close()
    assert served >= 5
    lines = [r for r in caplog.records if r.name.startswith(("origin", "aiohttp", "asyncio"))]
    assert len(lines) <= 3, [r.getMessage() for r in lines]
