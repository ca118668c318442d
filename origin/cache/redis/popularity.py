"""What is served most, for the worker's pre-render: one sorted set per UTC day in Redis.

Counting runs on every response, hits included, so it is a dict increment in process;
a background task adds the counts to today's set as one pipeline of ZINCRBY every
`flush_interval`, and closing flushes once more. A failed flush drops its counts:
popularity steers pre-rendering, nothing more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta

from ...spec import TransformSpec, canonical
from .client import RedisClient

POPULARITY_TTL = 8 * 86400
"""A day's popularity set outlives a week, so the worker can read the last seven full days."""


class Popularity:
    def __init__(self, client: RedisClient, *, flush_interval: float) -> None:
        self.client = client
        self.flush_interval = flush_interval
        self._pending: Counter[str] = Counter()
        self._specs: dict[str, TransformSpec] = {}
        self._flusher: asyncio.Task[None] | None = None

    def count(self, name: str, spec: TransformSpec) -> None:
        """One response for the variant `name` of `spec`; in memory only (this runs on every hit)."""
        self._pending[name] += 1
        self._specs.setdefault(name, spec)

    def start(self) -> None:
        self._flusher = asyncio.get_running_loop().create_task(self._flush_every())

    async def flush(self) -> None:
        """Add the counts since the last flush to today's (UTC) sorted set; on failure they are dropped."""
        if not self._pending:
            return
        pending, specs = self._pending, self._specs
        self._pending, self._specs = Counter(), {}
        totals: Counter[str] = Counter()
        for name, count in pending.items():
            # `dl` names the download, not the bytes: the same render whatever it says.
            totals[canonical(dataclasses.replace(specs[name], dl=None))] += count
        day = self._day(datetime.now(UTC))

        async def write() -> None:
            async with self.client.raw.pipeline(transaction=False) as pipe:
                for text, count in totals.items():
                    pipe.zincrby(day, count, text)
                pipe.expire(day, POPULARITY_TTL)
                await pipe.execute()

        await self.client.write(write)

    async def popular(self, count: int, days: int = 2) -> list[str]:
        """The `count` canonical specs served most over the last `days` UTC days, most first.

        The days are summed in Redis into a scratch key that lives only inside the
        transaction, so only `count` strings cross the network.
        """
        if count <= 0:
            return []
        today = datetime.now(UTC)
        sets = [self._day(today - timedelta(days=back)) for back in range(days)]
        scratch = self.client.key("pop", f"top:{secrets.token_hex(8)}")

        async def top() -> list[str]:
            async with self.client.raw.pipeline(transaction=True) as pipe:
                pipe.zunionstore(scratch, sets)
                pipe.zrevrange(scratch, 0, count - 1)
                pipe.delete(scratch)
                _, names, _ = await pipe.execute()
            return [name.decode() for name in names]

        return await self.client.call(top, [])

    async def close(self) -> None:
        """Stop flushing on a timer and flush what is left."""
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self.flush()

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    def _day(self, moment: datetime) -> str:
        """One UTC day's popularity set: canonical spec -> responses served."""
        return self.client.key("pop", f"{moment:%Y%m%d}")
