"""The render pool's deadline: it counts a render's own running time, never its time in the queue."""

from __future__ import annotations

import asyncio
import time

import pytest

from origin.errors import RenderTimeout
from origin.executor import RenderPool


def _sleep(seconds: float, guard: object) -> float:
    time.sleep(seconds)
    return seconds


async def test_a_queued_render_is_not_killed_for_time_spent_waiting():
    pool = RenderPool(workers=1, queue=4, timeout=0.5, retry_after=1, memory=1 << 20)
    try:
        # One worker: the third render waits ~0.6 s in the queue, past the 0.5 s deadline,
        # then runs for 0.3 s of its own and must succeed.
        results = await asyncio.gather(*(pool.run(_sleep, 0.3) for _ in range(3)))
        assert results == [0.3, 0.3, 0.3]
    finally:
        pool.close()


async def test_a_render_that_runs_past_the_deadline_is_cut():
    pool = RenderPool(workers=1, queue=4, timeout=0.2, retry_after=1, memory=1 << 20)
    try:
        started = time.perf_counter()
        with pytest.raises(RenderTimeout):
            await pool.run(_sleep, 0.6)
        assert time.perf_counter() - started < 0.5
    finally:
        pool.close()
