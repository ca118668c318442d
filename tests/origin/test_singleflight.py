"""Coalescing: one render for many concurrent requests, errors shared once, no leaks."""

from __future__ import annotations

import asyncio

import pytest

from origin.http.appkeys import SERVICE
from origin.singleflight import SingleFlight
from tests.images import encode, quadrants


async def test_concurrent_callers_share_one_execution():
    flight: SingleFlight[int] = SingleFlight()
    calls = 0

    async def work() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return 42

    results = await asyncio.gather(*(flight.run("k", work) for _ in range(20)))
    assert calls == 1
    assert [value for value, _ in results] == [42] * 20
    assert sum(leader for _, leader in results) == 1
    assert len(flight) == 0


async def test_a_failure_reaches_every_waiter_and_is_forgotten():
    flight: SingleFlight[int] = SingleFlight()

    async def boom() -> int:
        await asyncio.sleep(0.01)
        raise ValueError("render failed")

    results = await asyncio.gather(*(flight.run("k", boom) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert len(flight) == 0

    async def ok() -> int:
        return 1

    assert await flight.run("k", ok) == (1, True)


async def test_the_leader_cancelled_does_not_cancel_the_work():
    flight: SingleFlight[str] = SingleFlight()
    started = asyncio.Event()

    async def work() -> str:
        started.set()
        await asyncio.sleep(0.05)
        return "done"

    leader = asyncio.ensure_future(flight.run("k", work))
    await started.wait()
    follower = asyncio.ensure_future(flight.run("k", work))
    leader.cancel()
    assert await follower == ("done", False)
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert len(flight) == 0


async def test_fifty_requests_for_one_cold_variant_render_once(client, store):
    store("big.png", encode(quadrants(1500, 1500), ".png"))
    service = client.app[SERVICE]
    before = service.pool.renders

    async def fetch() -> tuple[int, bytes, str]:
        async with client.get("/big.png?w=300&fm=webp&sharp=20") as resp:
            return resp.status, await resp.read(), resp.headers["X-Cache"]

    results = await asyncio.gather(*(fetch() for _ in range(50)))
    assert {status for status, _, _ in results} == {200}
    assert len({body for _, body, _ in results}) == 1
    assert service.pool.renders == before + 1
    outcomes = [cache for _, _, cache in results]
    assert outcomes.count("miss") == 1
    assert set(outcomes) <= {"miss", "coalesced", "memory"}
