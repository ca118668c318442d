"""Redis for the tests: an in-memory server the apps share, or the real one with a private prefix.

The real Redis may be shared with other work, so each test writes under its own key
prefix and removes only those keys afterwards (never FLUSHDB).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import fakeredis
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

import origin.cache.redis

REDIS_URL = os.environ.get("IMAGE_ORIGIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class RealRedis:
    url: str
    prefix: str
    client: aioredis.Redis


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeServer:
    """Every app built in the test talks to this one in-memory server, as replicas share one Redis."""
    server = fakeredis.FakeServer()
    monkeypatch.setattr(origin.cache.redis, "connect", lambda url, timeout: fakeredis.FakeAsyncRedis(server=server))
    return server


@pytest.fixture
async def real_redis() -> AsyncIterator[RealRedis]:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        await client.ping()
    except (RedisError, OSError):
        await client.aclose()
        pytest.skip(f"no Redis answers at {REDIS_URL} (CI starts one; locally: redis-server)")
    prefix = f"test:{uuid.uuid4().hex}:"
    yield RealRedis(REDIS_URL, prefix, client)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
