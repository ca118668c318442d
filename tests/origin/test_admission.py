"""Admission before I/O and bounded source memory (issue 8 items 1, 2; issue 10's coalescing).

Each test reads a real folder through `CountingStorage`, the local storage with an
instrument on it: it really reads the files and counts every byte it returns, so "read
nothing" and "read only the range" are measured, not assumed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
import pyvips
from multidict import CIMultiDict

import origin.app
from origin.http.appkeys import SERVICE, STORAGE
from origin.service import SMALL_ORIGINAL
from origin.storage import ObjectInfo, Reader
from tests.images import decode, encode, png, quadrants
from tests.s3 import PREFIX

RETRY_AFTER = "2"
SLOW = "blur=2000&fm=png"  # about 0.5 s on a 16 MP source


class CountingReader:
    def __init__(self, inner: Reader, counter: CountingStorage) -> None:
        self.inner = inner
        self.info = inner.info
        self.counter = counter

    async def read(self, size: int) -> bytes:
        data = await self.inner.read(size)
        self.counter.bytes_read += len(data)
        return data

    async def close(self) -> None:
        self.counter.open_streams -= 1
        await self.inner.close()


class CountingStorage:
    """The app's own storage, every byte it hands out counted (an instrument, not a mock)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.bytes_read = 0
        self.reads = 0
        self.open_streams = 0

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        data, info = await self.inner.get(key)
        self.reads += 1
        self.bytes_read += len(data)
        return data, info

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> CountingReader:
        reader = await self.inner.stream(key, start, end)
        self.reads += 1
        self.open_streams += 1
        return CountingReader(reader, self)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@pytest.fixture(autouse=True)
def counting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every app built here opens its storage with the instrument on it, so the service and the
    handlers are handed the counted storage from the start (nothing is swapped afterwards)."""
    real = origin.app.open_storage

    async def opened(url: str, timeout: float) -> CountingStorage:
        return CountingStorage(await real(url, timeout))

    monkeypatch.setattr(origin.app, "open_storage", opened)


def counted(client) -> CountingStorage:
    storage = client.app[STORAGE]
    assert isinstance(storage, CountingStorage)
    return storage


def big_png(side: int = 4000) -> bytes:
    return encode(quadrants(side, side), ".png", compression=1)


def noise_png(width: int, height: int) -> bytes:
    """Incompressible: an original of about width x height x 3 bytes, to stream."""
    image = pyvips.Image.gaussnoise(width, height, mean=128, sigma=60).bandjoin([128, 128]).cast("uchar")
    return encode(image.copy(interpretation="srgb"), ".png", compression=0)


async def idle(client, seconds: float = 5.0) -> None:
    """Every slot, byte and stream given back."""
    service = client.app[SERVICE]
    deadline = time.monotonic() + seconds
    while service.pool.admitted or service.memory.used or service.streams._value != service.streams_limit:
        assert time.monotonic() < deadline, (service.pool.admitted, service.memory.used)
        await asyncio.sleep(0.02)


async def get(client, target: str, **kwargs) -> tuple[int, CIMultiDict[str], bytes]:
    async with client.get(target, **kwargs) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


def overloaded(status: int, headers: CIMultiDict[str], body: bytes) -> bool:
    return (
        status == 503
        and headers.get("Retry-After") == RETRY_AFTER
        and json.loads(body)["error"]["code"] == "overloaded"
    )


async def test_refused_renders_read_nothing(make_client, store):
    data = big_png()
    store("big.png", data)
    client = await make_client(render_workers=1, render_queue=0)
    storage = counted(client)
    busy = asyncio.ensure_future(get(client, f"/big.png?w=3999&{SLOW}"))
    deadline = time.monotonic() + 5
    while storage.bytes_read < len(data):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)
    refused = await asyncio.gather(*(get(client, f"/big.png?w={100 + i}") for i in range(30)))
    assert all(overloaded(*result) for result in refused), [r[0] for r in refused]
    assert storage.bytes_read == len(data), "a refused request read its source"
    assert (await busy)[0] == 200
    await idle(client)


async def test_source_memory_bounds_renders(make_client, store):
    data = big_png()
    for i in range(6):
        store(f"s{i}.png", data)
    # Room for the bytes of one source and a half: at most one render's source is in memory.
    limit = len(data) * 3 // 2
    client = await make_client(render_workers=2, render_queue=8, source_memory=limit, source_memory_wait=0.3)
    storage = counted(client)
    service = client.app[SERVICE]
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, service.memory.used)
            await asyncio.sleep(0.002)

    watcher = asyncio.ensure_future(watch())
    results = await asyncio.gather(*(get(client, f"/s{i}.png?w=3999&{SLOW}") for i in range(6)))
    watcher.cancel()
    statuses = [status for status, _, _ in results]
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
    for result in results:
        assert result[0] == 200 or overloaded(*result), result[:2]
    assert 0 < peak <= limit
    assert storage.bytes_read == len(data) * statuses.count(200), "a refused render read its source"
    await idle(client)


async def test_same_original_read_once(client, store):
    data = png(300, 200)
    store("p.png", data)
    storage = counted(client)
    results = await asyncio.gather(*(get(client, "/p.png") for _ in range(20)))
    assert all(status == 200 and body == data for status, _, body in results)
    assert storage.reads == 1
    assert {headers["X-Cache"] for _, headers, _ in results} <= {"miss", "coalesced", "memory"}
    await idle(client)


async def test_range_reads_only_the_range(client, store):
    data = noise_png(700, 700)
    assert len(data) > SMALL_ORIGINAL
    store("n.png", data)
    storage = counted(client)
    results = await asyncio.gather(*(get(client, "/n.png", headers={"Range": "bytes=0-0"}) for _ in range(64)))
    for status, headers, body in results:
        assert status == 206 and body == data[:1]
        assert headers["Content-Range"] == f"bytes 0-0/{len(data)}"
        assert headers["Content-Type"] == "image/png"
    assert storage.bytes_read == 64 + 4096  # the ranges, and the first 4 KiB once, to sniff the type
    before = storage.bytes_read
    status, headers, body = await get(client, "/n.png", headers={"Range": "bytes=100000-100999"})
    assert status == 206 and body == data[100000:101000]
    assert storage.bytes_read - before == 1000  # the type was sniffed already: only the range
    await idle(client)


async def test_large_original_streams_whole_and_head_reads_nothing_more(client, store):
    data = noise_png(700, 700)
    store("n.png", data)
    storage = counted(client)
    status, headers, body = await get(client, "/n.png")
    assert status == 200 and body == data
    assert headers["Content-Length"] == str(len(data)) and headers["Content-Type"] == "image/png"
    assert headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in headers["Content-Security-Policy"]
    assert storage.bytes_read == len(data) + 4096
    async with client.head("/n.png") as resp:
        assert resp.status == 200 and resp.headers["Content-Length"] == str(len(data))
        assert resp.headers["ETag"] == headers["ETag"]
    assert storage.bytes_read == len(data) + 4096, "HEAD read the body"
    await idle(client)


def slow_reader(port: int, target: str) -> socket.socket:
    """A client that asks for a large original and then reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


async def test_slow_readers_are_bounded_and_given_back(make_client, store):
    data = noise_png(2000, 2000)  # 12 MB: far more than the sockets buffer
    store("n.png", data)
    client = await make_client(original_streams=2, source_memory_wait=0.2, send_timeout=30)
    service = client.app[SERVICE]
    slow = [slow_reader(client.port, "/n.png") for _ in range(2)]
    try:
        deadline = time.monotonic() + 5
        while service.streams._value:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert overloaded(*(await get(client, "/n.png")))
        assert (await get(client, "/n.png", headers={"Range": "bytes=0-9"}))[0] == 503
        assert service.memory.used <= 2 * 2 * 128 * 1024
    finally:
        for sock in slow:
            sock.close()
    deadline = time.monotonic() + 5
    while True:  # the server notices the closed sockets at its next write
        status, _, body = await get(client, "/n.png", headers={"Range": "bytes=0-9"})
        if status == 206:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert body == data[:10]
    await idle(client)


async def test_send_timeout_cuts_a_reader_that_stops(make_client, store):
    data = noise_png(2000, 2000)
    store("n.png", data)
    client = await make_client(original_streams=1, send_timeout=0.3)
    service = client.app[SERVICE]
    sock = slow_reader(client.port, "/n.png")
    try:
        await asyncio.sleep(0.1)
        deadline = time.monotonic() + 5
        while service.streams._value == 0:  # freed once the stalled write passes its deadline
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        status, _, body = await get(client, "/n.png")
        assert status == 200 and body == data
    finally:
        sock.close()
    await idle(client)


async def test_everything_given_back_on_every_path(make_client, store, data_dir):
    store("p.png", png())
    store("corrupt.png", png()[:60])
    store("n.png", noise_png(700, 700))
    client = await make_client(render_workers=1, render_queue=0)
    storage = counted(client)
    targets = ["/p.png?w=10", "/corrupt.png?w=10", "/missing.png?w=10", "/p.png", "/n.png"]
    statuses = [(await get(client, target))[0] for target in targets]
    assert statuses == [200, 422, 404, 200, 200]
    status, _, _ = await get(client, "/n.png", headers={"Range": "bytes=99999999-"})
    assert status == 416
    await idle(client)
    assert storage.open_streams == 0
    assert decode((await get(client, "/p.png?w=12"))[2]).width == 12


async def test_s3_originals_stream_and_ranges(make_client, s3_raw, s3_url):
    client_s3, bucket = s3_raw
    data = noise_png(700, 700)
    client_s3.put_object(Bucket=bucket, Key=f"{PREFIX}/n.png", Body=data)
    client = await make_client(storage_url=s3_url)
    results = await asyncio.gather(*(get(client, "/n.png", headers={"Range": "bytes=0-0"}) for _ in range(16)))
    assert all(status == 206 and body == data[:1] for status, _, body in results)
    status, headers, body = await get(client, "/n.png", headers={"Range": "bytes=-100"})
    assert status == 206 and body == data[-100:]
    status, headers, body = await get(client, "/n.png")
    assert status == 200 and body == data and headers["Content-Type"] == "image/png"
    await idle(client)
