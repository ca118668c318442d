"""`POST /_/events` on the worker: S3-style notifications pushed by MinIO or Ceph RGW.

A push has no queue behind it: the sender forgets an event once we answer 200. So the
webhook only parses and appends the events to the Redis stream, and answers 200 once
Redis has them; the stream consumers do the work, with the stream's retries. Redis
unavailable: 503, and the sender retries (MinIO and RGW's persistent topics do). A body
we cannot read: 400, which tells the sender (a queue would have logged and dropped it).

The token comes as `Authorization: Bearer <token>` (MinIO's `auth_token`), or for a
sender that cannot set headers, as `?token=` in the endpoint URL (RGW's push-endpoint).
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from origin.errors import OriginError
from origin.http.jsonapp import json_app
from origin.settings import WorkerConfig
from origin.storage_events import MalformedEvent, to_fields
from origin.tokens import Tokens

from ..events import Scope, parse_message
from .stream import open_redis

log = logging.getLogger("workers.webhook")
PATH = "/_/events"


class InvalidEvent(OriginError):
    status = 400
    code = "invalid_event"


class EventsUnavailable(OriginError):
    status = 503
    code = "unavailable"


def webhook_tokens(config: WorkerConfig) -> Tokens:
    """`worker_tokens`, else the management `tokens`; never none (an open webhook takes anyone's events)."""
    tokens = config.tokens
    if not tokens:
        raise ValueError("the webhook needs a token: set worker_tokens (or tokens)")
    return Tokens(tuple(token.encode() for token in tokens))


def webhook_app(config: WorkerConfig, redis: aioredis.Redis) -> web.Application:
    tokens = webhook_tokens(config)
    scope = Scope.of(config.storage_url)
    stream = config.stream

    async def receive(request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        if authorization is None and "token" in request.query:
            authorization = f"Bearer {request.query['token']}"
        tokens.check(authorization)
        try:
            events = parse_message(await request.read(), scope)
        except MalformedEvent as exc:
            raise InvalidEvent(f"not an S3 event notification: {exc}") from None
        try:
            async with asyncio.timeout(config.redis_timeout):
                async with redis.pipeline(transaction=True) as pipe:
                    for event in events:
                        pipe.xadd(stream, to_fields(event), maxlen=config.stream_maxlen, approximate=True)
                    await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("could not queue %d events (%s: %s): answered 503", len(events), type(exc).__name__, exc)
            raise EventsUnavailable(
                "events cannot be queued right now; send them again", headers={"Retry-After": "5"}
            ) from None
        return web.json_response({"queued": len(events)})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})

    app = json_app(error_cache_control="no-store", client_max_size=config.max_body_bytes)
    app.router.add_post(PATH, receive)
    app.router.add_get("/_/health", health)
    return app


class WebhookSource:
    """Serves the webhook on `worker_host`:`worker_port` until `stop`, then stops accepting."""

    def __init__(self, config: WorkerConfig) -> None:
        if config.port is None or config.redis_url is None:
            raise ValueError("the webhook needs worker_port and redis_url")
        webhook_tokens(config)  # refuse to start without a token, before anything listens
        self.config = config

    async def run(self, stop: asyncio.Event) -> None:
        redis = open_redis(self.config)
        runner = web.AppRunner(webhook_app(self.config, redis), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port)
            await site.start()
            log.info("webhook listening on %s%s", site.name, PATH)
            await stop.wait()
        finally:
            await runner.cleanup()
            await redis.aclose()
