"""Readiness: can this process serve images now? Storage answers, and Redis when configured.

`/_/health` says the process is alive (restart it if not); `/_/ready` says whether to send
it traffic (take it out of the balancer if not), so a storage outage does not turn into
restarts. The checks run together, each under `ready_timeout`, so a probe answers quickly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Protocol

from aiohttp import web

from .appkeys import READY_TIMEOUT, SHARED, STORAGE

log = logging.getLogger("origin.ready")
_NO_STORE = {"Cache-Control": "no-store"}


class Pings(Protocol):
    """What readiness needs from the shared cache: True when it answers."""

    async def ping(self) -> bool: ...


async def ready(request: web.Request) -> web.Response:
    """200 `{"status": "ready", "checks": {...}}`, or 503 naming the checks that failed."""
    shared = request.app[SHARED]
    checks = {"storage": request.app[STORAGE].ping()}
    if shared is not None:
        checks["redis"] = _ping(shared.client)
    timeout = request.app[READY_TIMEOUT]
    states = dict(zip(checks, await asyncio.gather(*(_state(n, c, timeout) for n, c in checks.items())), strict=True))
    down = [name for name, state in states.items() if state != "ok"]
    if down:
        return web.json_response(
            {"status": "unavailable", "down": down, "checks": states}, status=503, headers=_NO_STORE
        )
    return web.json_response({"status": "ready", "checks": states}, headers=_NO_STORE)


async def _state(name: str, check: Awaitable[None], timeout: float) -> str:
    """ "ok", "timeout" or "error": the reason is logged for operators, not shown to whoever probes."""
    try:
        async with asyncio.timeout(timeout):
            await check
    except TimeoutError:
        log.warning("not ready: %s did not answer within %g s", name, timeout)
        return "timeout"
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "not ready"
        log.warning("not ready: %s failed: %r", name, exc)
        return "error"
    return "ok"


async def _ping(redis: Pings) -> None:
    """A ping that answers False (say, while its breaker is open) is down, like one that raises."""
    if not await redis.ping():
        raise ConnectionError("Redis did not answer PING")
