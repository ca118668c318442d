"""Replicas behind one Redis render each variant once, and a failing or vanished holder strands nobody.

First two apps in one process over an in-memory Redis (fast, and they can be inspected),
then two real `python -m origin` processes over the real Redis.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import fakeredis
import pyvips

from origin.http.appkeys import POOL, SERVICE
from tests.images import encode, png, quadrants
from tests.live import free_port, wait_healthy
from tests.redis_helpers import RealRedis


async def fetch(client: Any, url: str) -> tuple[int, str, bytes]:
    async with client.get(url) as resp:
        return resp.status, resp.headers.get("X-Cache", ""), await resp.read()


async def etag_of(client: Any, url: str) -> str:
    """The variant key, without rendering (If-None-Match: * answers 304 before any render)."""
    async with client.get(url, headers={"If-None-Match": "*"}) as resp:
        assert resp.status == 304
        return resp.headers["ETag"].strip('"')


def renders(*clients: Any) -> int:
    return sum(client.app[POOL].renders for client in clients)


async def test_two_replicas_render_a_cold_variant_once(make_client, store, fake_server):
    store("big.png", encode(quadrants(1500, 1500), ".png"))
    one, two = await make_client(redis_url="redis://fake"), await make_client(redis_url="redis://fake")
    url = "/big.png?w=300&fm=webp&sharp=20"
    results = await asyncio.gather(*(fetch(one if i % 2 else two, url) for i in range(20)))
    assert {status for status, _, _ in results} == {200}
    assert len({body for _, _, body in results}) == 1
    assert renders(one, two) == 1
    outcomes = [cache for _, cache, _ in results]
    assert outcomes.count("miss") == 1 and set(outcomes) <= {"miss", "coalesced", "redis", "memory"}


async def test_a_failed_render_is_shared_once_and_cached_nowhere(make_client, store, fake_server):
    store("bad.png", png(400, 300)[:600])  # a valid header, then nothing: fails in the render
    one, two = await make_client(redis_url="redis://fake"), await make_client(redis_url="redis://fake")
    results = await asyncio.gather(*(fetch(one if i % 2 else two, "/bad.png?w=100") for i in range(10)))
    statuses = {status for status, _, _ in results}
    assert len(statuses) == 1 and statuses.pop() >= 400
    assert renders(one, two) <= 2  # the holder's failure, then at most one retry by the other replica
    fake = fakeredis.FakeAsyncRedis(server=fake_server)
    assert await fake.keys("io:v:*") == await fake.keys("io:lock:*") == []  # no variant, no lock


async def test_a_lease_whose_holder_vanished_expires_and_the_waiter_renders(make_client, store, fake_server):
    store("a.png", png(200, 100))
    client = await make_client(redis_url="redis://fake")
    etag = await etag_of(client, "/a.png?w=50")
    await fakeredis.FakeAsyncRedis(server=fake_server).set(f"io:lock:{etag}", "dead", px=300)
    started = time.monotonic()
    assert (await fetch(client, "/a.png?w=50"))[:2] == (200, "miss")
    assert time.monotonic() - started >= 0.3


async def test_cancelled_requests_leave_no_lock_and_no_flight(make_client, store, fake_server):
    store("big.png", encode(quadrants(1500, 1500), ".png"))
    one, two = await make_client(redis_url="redis://fake"), await make_client(redis_url="redis://fake")
    url = "/big.png?w=300&fm=webp&sharp=20"
    requests = [asyncio.ensure_future(fetch(client, url)) for client in (one, two)]
    started = time.monotonic() + 10
    while not renders(one, two):  # cancel mid-render, however slow a loaded machine is to get there
        assert time.monotonic() < started, "the render never started"
        await asyncio.sleep(0.005)
    for request in requests:
        request.cancel()
    await asyncio.gather(*requests, return_exceptions=True)
    fake = fakeredis.FakeAsyncRedis(server=fake_server)
    deadline = time.monotonic() + 10
    while len(one.app[SERVICE].flight) + len(two.app[SERVICE].flight) or await fake.keys("io:lock:*"):
        assert time.monotonic() < deadline, "a flight or a lock outlived its render"
        await asyncio.sleep(0.02)
    assert renders(one, two) == 1
    assert (await fetch(two, url))[:2] in {(200, "memory"), (200, "redis")}


async def test_two_origin_processes_render_a_cold_variant_once(tmp_path: Path, real_redis: RealRedis):
    data = tmp_path / "data"
    data.mkdir()
    noise = encode(_noise(2000), ".png", compression=1)  # ~150 ms to decode and resize
    (data / "heavy.png").write_bytes(noise)
    ports = [free_port(), free_port()]
    env = {
        **os.environ,
        "IMAGE_ORIGIN_STORAGE_URL": f"file://{data}",
        "IMAGE_ORIGIN_METRICS_PUBLIC": "true",  # render counts: /_/health publishes none
        "IMAGE_ORIGIN_REDIS_URL": real_redis.url,
        "IMAGE_ORIGIN_REDIS_PREFIX": real_redis.prefix,
        "IMAGE_ORIGIN_RENDER_QUEUE": "64",
    }
    log = (tmp_path / "origins.log").open("w")
    procs = [
        subprocess.Popen([sys.executable, "-m", "origin", "--port", str(port)], env=env, cwd=tmp_path, stderr=log)
        for port in ports
    ]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base in bases:
            await wait_healthy(base)
        async with aiohttp.ClientSession() as session:

            async def get(base: str, query: str) -> tuple[int, bytes]:
                async with session.get(f"{base}/heavy.png?{query}") as resp:
                    return resp.status, await resp.read()

            async def renders() -> list[int]:
                counts = []
                for base in bases:
                    async with session.get(f"{base}/_/metrics") as resp:  # metrics_public, set above
                        text = await resp.text()
                    counts.append(int(float(re.search(r"^image_origin_renders_total (\S+)$", text, re.M).group(1))))
                return counts

            # Warm processes (code paths, Redis connections), then a cold variant.
            for base in bases:
                assert (await get(base, "w=10&fm=webp"))[0] == 200
            before = await renders()
            results = await asyncio.gather(*(get(bases[i % 2], "w=300&fm=webp") for i in range(50)))
            after = await renders()
        assert [status for status, _ in results] == [200] * 50
        assert len({body for _, body in results}) == 1
        logged = (tmp_path / "origins.log").read_text()
        assert sum(after) - sum(before) == 1, f"renders per process: {before} -> {after}\n{logged}"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await asyncio.to_thread(proc.wait, 30)
        log.close()


def _noise(side: int) -> pyvips.Image:
    """Incompressible pixels, so the PNG is slow to decode, as a large photo is."""
    grey = pyvips.Image.gaussnoise(side, side, mean=128, sigma=40).cast("uchar")
    return grey.bandjoin([grey.rot90(), grey.flip("horizontal")]).copy(interpretation="srgb")
