"""The source memory tells when its last byte is given back (origin/source_memory.py), and the
app tidies memory then, even when no render ran (originals served whole or streamed)."""

from __future__ import annotations

import asyncio

import origin.executor
from origin.source_memory import SourceMemory
from tests.images import png


async def test_on_empty_is_called_when_the_last_hold_goes():
    calls: list[int] = []
    memory = SourceMemory(100, 0.1, 1, on_empty=lambda: calls.append(memory.used))
    first, second = await memory.hold(40), await memory.hold(30)
    first.release()
    assert calls == []  # 30 bytes still held
    second.release()
    second.release()  # once, however often called
    assert calls == [0]
    third = await memory.hold(10)
    third.release()
    assert calls == [0, 0]


async def test_serving_originals_alone_tidies_once_idle(client, store, monkeypatch):
    """64 slow readers of 13 MB originals left 161 MiB resident when only renders tidied; now the
    emptied source memory starts the same one-second idle tidy (gc, then malloc_trim)."""
    tidied: list[int] = []
    monkeypatch.setattr(origin.executor, "release_free_memory", lambda: tidied.append(1))
    monkeypatch.setattr(origin.executor, "IDLE_TIDY_AFTER", 0.05)
    store("p.png", png(300, 200))
    response = await client.get("/p.png")
    assert response.status == 200
    await response.read()
    for _ in range(100):
        if tidied:
            break
        await asyncio.sleep(0.02)
    assert tidied
