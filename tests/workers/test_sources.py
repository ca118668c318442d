"""Events in, over the real protocols: SQS (moto's server), the webhook and the Redis
stream (the real Redis, under a private prefix), and the origin's own uploads and deletes.

The handler is a recorder of our own; the real one (pre-render, invalidate) has its own tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import boto3
import pytest
from aiohttp import FormData

from origin.app import create_app
from origin.events import QueueEmitter
from origin.settings import Settings
from origin.storage_events import StorageEvent, from_fields, stream_key, to_fields
from tests import FIXTURES
from tests.images import png
from tests.redis_helpers import RealRedis
from tests.s3 import REGION
from workers.runner import WorkerError, check_sources, run_worker
from workers.sources.sqs import SqsSource
from workers.sources.stream import GROUP, StreamConsumer, open_redis
from workers.sources.webhook import WebhookSource, webhook_app

EVENTS = FIXTURES / "events"
RGW_KEY = "photos/summer 2024/cät+1.jpg"
TOKEN = "hook-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class RecordingHandler:
    """Records what it was given; `fail` makes every attempt raise (a retryable failure)."""

    def __init__(self, *, fail: bool = False, delay: float = 0.0) -> None:
        self.fail = fail
        self.delay = delay
        self.attempts: list[StorageEvent] = []
        self.events: list[StorageEvent] = []

    async def handle(self, event: StorageEvent) -> None:
        self.attempts.append(event)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("render failed")
        self.events.append(event)


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Callable[[asyncio.Event], Coroutine[Any, Any, None]]], None]]:
    """Start sources (`run(stop)`) in the background; at the end stop them and see them drain."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    def start(run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
        tasks.append(asyncio.create_task(run(stop)))

    yield start
    stop.set()
    async with asyncio.timeout(10):
        await asyncio.gather(*tasks)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- SQS (moto)


@pytest.fixture
def sqs(s3_endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=s3_endpoint, region_name=REGION)


def new_queue(sqs: Any, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex}", Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def queued(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def sqs_settings(s3_url: str, s3_endpoint: str, queue_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "storage_url": s3_url,
        "sqs_queue_url": queue_url,
        "sqs_endpoint_url": s3_endpoint,
        "sqs_wait_seconds": 1,
        "events_retry_base": 0,
    }
    return Settings(**{**values, **overrides})


async def test_sqs_bucket_notification_end_to_end(s3_raw, s3_url, s3_endpoint, sqs, running):
    s3, bucket = s3_raw
    url, arn = new_queue(sqs)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    keys = ["photos/red flower.jpg", "photos/a+b é.jpg"]  # in the body: red+flower.jpg, a%2Bb+%C3%A9.jpg
    etags = [s3.put_object(Bucket=bucket, Key=f"origin/test/{key}", Body=key.encode())["ETag"] for key in keys]
    s3.put_object(Bucket=bucket, Key="elsewhere/c.jpg", Body=b"c")  # outside the storage prefix
    handler = RecordingHandler()
    running(SqsSource(sqs_settings(s3_url, s3_endpoint, url).configs().worker, handler).run)
    await eventually(lambda: len(handler.events) == 2 and queued(sqs, url) == 0)
    # The s3:TestEvent went unhandled; keys lost the storage prefix and were decoded.
    assert sorted(handler.events, key=lambda event: keys.index(event.key)) == [
        StorageEvent("created", key, etag.strip('"'), "aws") for key, etag in zip(keys, etags, strict=True)
    ]


async def test_sqs_failure_is_redelivered_then_dropped(s3_url, s3_endpoint, sqs, running, caplog):
    url, _ = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody=(EVENTS / "ceph-rgw-object-created.json").read_text())
    sqs.send_message(QueueUrl=url, MessageBody="{not json")
    handler = RecordingHandler(fail=True)
    running(
        SqsSource(
            sqs_settings(s3_url, s3_endpoint, url, storage_url="file://./data", events_max_deliveries=2)
            .configs()
            .worker,
            handler,
        ).run
    )
    await eventually(lambda: queued(sqs, url) == 0)
    assert [event.key for event in handler.attempts] == [RGW_KEY, RGW_KEY]  # received twice, handled twice
    assert "received 3 times" in caplog.text and "not JSON" in caplog.text


async def test_sqs_with_a_dead_letter_queue_leaves_failures_to_it(s3_url, s3_endpoint, sqs, running, caplog):
    _, dead_arn = new_queue(sqs)
    policy = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "10"})
    url, _ = new_queue(sqs, RedrivePolicy=policy)
    sqs.send_message(QueueUrl=url, MessageBody=(EVENTS / "ceph-rgw-object-removed.json").read_text())
    handler = RecordingHandler(fail=True)
    source = SqsSource(
        sqs_settings(s3_url, s3_endpoint, url, storage_url="file://./data", events_max_deliveries=1).configs().worker,
        handler,
    )
    running(source.run)
    await eventually(lambda: len(handler.attempts) >= 3)
    assert source.dead_letter and queued(sqs, url) == 1 and "dropping" not in caplog.text


# --------------------------------------------------------------------------- webhook


@pytest.fixture
def hook_settings(real_redis: RealRedis) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": real_redis.url,
            "redis_prefix": real_redis.prefix,
            "worker_tokens": [TOKEN],
            "worker_redis_timeout": 1.0,
        }
        return Settings(**{**values, **overrides})

    return build


@pytest.fixture
async def hook(aiohttp_client: Any) -> AsyncIterator[Callable[[Settings], Coroutine[Any, Any, Any]]]:
    clients = []

    async def build(settings: Settings) -> Any:
        redis = open_redis(settings.configs().worker)
        clients.append(redis)
        return await aiohttp_client(webhook_app(settings.configs().worker, redis))

    yield build
    for redis in clients:
        await redis.aclose()


async def stream_events(real_redis: RealRedis) -> list[StorageEvent]:
    entries = await real_redis.client.xrange(stream_key(real_redis.prefix))
    return [from_fields(fields) for _id, fields in entries]


async def test_webhook_queues_rgw_events_in_the_stream(hook, hook_settings, real_redis):
    client = await hook(hook_settings())
    rgw = (EVENTS / "ceph-rgw-object-created.json").read_bytes()
    async with client.post("/_/events", data=rgw, headers=AUTH) as resp:
        assert resp.status == 200 and await resp.json() == {"queued": 1}
    async with client.post(
        f"/_/events?token={TOKEN}", data=(EVENTS / "ceph-rgw-object-removed.json").read_bytes()
    ) as resp:
        assert resp.status == 200  # RGW's push-endpoint cannot send headers
    assert await stream_events(real_redis) == [
        StorageEvent("created", RGW_KEY, "f696e1bd51e165f0b6ef3962dce274d6", "rgw"),
        StorageEvent("removed", RGW_KEY, "f696e1bd51e165f0b6ef3962dce274d6", "rgw"),
    ]


@pytest.mark.parametrize(
    ("headers", "data", "status", "code"),
    [
        ({}, b"{}", 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, b"{}", 403, "forbidden"),
        (AUTH, b"{not json", 400, "invalid_event"),
        (AUTH, b'{"Records": 1}', 400, "invalid_event"),
        (AUTH, b" " * 2048, 413, "payload_too_large"),
    ],
)
async def test_webhook_refusals(hook, hook_settings, real_redis, headers, data, status, code):
    client = await hook(hook_settings(worker_max_body_bytes=1024))
    async with client.post("/_/events", data=data, headers=headers) as resp:
        assert resp.status == status
        assert (await resp.json())["error"]["code"] == code
    assert await stream_events(real_redis) == []


async def test_webhook_answers_503_when_redis_is_down(hook, hook_settings):
    client = await hook(hook_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    async with client.post(
        "/_/events", data=(EVENTS / "ceph-rgw-object-created.json").read_bytes(), headers=AUTH
    ) as resp:
        assert resp.status == 503 and resp.headers["Retry-After"]
        assert (await resp.json())["error"]["code"] == "unavailable"


def test_webhook_needs_redis_and_a_token(hook_settings):
    with pytest.raises(WorkerError, match="redis_url"):
        check_sources(Settings(worker_port=0, worker_tokens=[TOKEN]).configs().worker)
    with pytest.raises(WorkerError, match="token"):
        check_sources(hook_settings(worker_port=0, worker_tokens=[]).configs().worker)
    assert (
        check_sources(Settings().configs().worker) is False
    )  # the embedded default: the worker idles (tests/workers/test_worker_ops.py)
    with pytest.raises(ValueError, match="token"):
        WebhookSource(hook_settings(worker_port=0, worker_tokens=[]).configs().worker)


# --------------------------------------------------------------------------- Redis stream


async def add(real_redis: RealRedis, *events: StorageEvent) -> None:
    for event in events:
        await real_redis.client.xadd(stream_key(real_redis.prefix), to_fields(event))


async def pending(real_redis: RealRedis) -> int:
    return int((await real_redis.client.xpending(stream_key(real_redis.prefix), GROUP))["pending"])


async def test_two_consumers_share_the_work_exactly_once(hook_settings, real_redis, running):
    settings = hook_settings(worker_concurrency=2)
    one, two = RecordingHandler(delay=0.01), RecordingHandler(delay=0.01)
    running(StreamConsumer(settings.configs().worker, one, name="one").run)
    running(StreamConsumer(settings.configs().worker, two, name="two").run)
    events = [StorageEvent("created", f"img/{n}.jpg", f"e{n}", "origin") for n in range(20)]
    await add(real_redis, *events)
    await eventually(lambda: len(one.events) + len(two.events) >= 20)
    await asyncio.sleep(0.1)
    assert sorted(one.events + two.events, key=events.index) == events
    assert one.events and two.events
    assert await pending(real_redis) == 0


@pytest.mark.parametrize("protocol", [2, 3])
async def test_stream_is_read_over_either_redis_protocol(hook_settings, real_redis, running, protocol):
    """RESP3 (`?protocol=3` in redis_url) answers a read as a map, RESP2 as a list: both are handled."""
    joiner = "&" if "?" in real_redis.url else "?"
    settings = hook_settings(redis_url=f"{real_redis.url}{joiner}protocol={protocol}")
    handler = RecordingHandler()
    running(StreamConsumer(settings.configs().worker, handler, name="reader").run)
    event = StorageEvent("created", "img/a.jpg", "e", "origin")
    await add(real_redis, event)
    await eventually(lambda: handler.events == [event])
    await asyncio.sleep(0.1)
    assert handler.events == [event]
    assert await pending(real_redis) == 0


async def test_an_entry_held_by_a_dead_consumer_is_claimed(hook_settings, real_redis, running):
    stream = stream_key(real_redis.prefix)
    await real_redis.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    event = StorageEvent("removed", "img/gone.jpg", None, "origin")
    await add(real_redis, event)
    held = await real_redis.client.xreadgroup(GROUP, "dead", {stream: ">"}, count=1)
    assert held  # "dead" now holds it and never acknowledges
    handler = RecordingHandler()
    running(StreamConsumer(hook_settings(events_claim_idle=0.3).configs().worker, handler, name="alive").run)
    await eventually(lambda: handler.events == [event])
    assert await pending(real_redis) == 0


async def test_stream_retries_are_capped_and_bad_entries_dropped(hook_settings, real_redis, running, caplog):
    await real_redis.client.xadd(stream_key(real_redis.prefix), {"not": "ours"})
    await add(real_redis, StorageEvent("created", "img/bomb.jpg", "e", "origin"))
    handler = RecordingHandler(fail=True)
    running(
        StreamConsumer(hook_settings(events_claim_idle=0.05, events_max_deliveries=3).configs().worker, handler).run
    )
    await eventually(lambda: "dropping stream entry" in caplog.text and "after 3 deliveries" in caplog.text)
    assert len(handler.attempts) == 3
    assert await pending(real_redis) == 0


async def test_run_worker_drains_on_stop(hook_settings, real_redis):
    handler = RecordingHandler()
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(hook_settings(events_claim_idle=0.2), lambda settings: contextlib.nullcontext(handler), stop=stop)
    )
    await add(real_redis, StorageEvent("created", "a.jpg", "e", "origin"))
    await eventually(lambda: len(handler.events) == 1)
    stop.set()
    async with asyncio.timeout(5):
        await worker
    consumers = await real_redis.client.xinfo_consumers(stream_key(real_redis.prefix), GROUP)
    assert consumers == []  # a clean stop leaves no consumer behind


# --------------------------------------------------------------------------- the origin's own writes


def upload_form(*names: str) -> FormData:
    form = FormData()
    for name in names:
        form.add_field("data", png(), filename=name, content_type="image/png")
    return form


async def test_origin_writes_go_to_the_stream(aiohttp_client, make_settings, real_redis):
    settings = make_settings(tokens=[TOKEN], redis_url=real_redis.url, redis_prefix=real_redis.prefix)
    client = await aiohttp_client(create_app(settings))
    async with client.post("/shop", data=upload_form("a.png", "b.png"), headers=AUTH) as resp:
        assert resp.status == 201
        stored = (await resp.json())["images"]
    async with client.put("/shop/a.png", data=png(32, 32), headers={**AUTH, "If-Match": "*"}) as resp:
        assert resp.status == 200
        replaced = (await resp.json())["etag"]
    async with client.delete("/shop", json={"images": ["a.png", "b.png"]}, headers=AUTH) as resp:
        assert resp.status == 200
    assert await stream_events(real_redis) == [
        StorageEvent("created", "shop/a.png", stored[0]["etag"], "origin"),
        StorageEvent("created", "shop/b.png", stored[1]["etag"], "origin"),
        StorageEvent("created", "shop/a.png", replaced, "origin"),
        StorageEvent("removed", "shop/a.png", None, "origin"),
        StorageEvent("removed", "shop/b.png", None, "origin"),
    ]


async def test_refused_writes_emit_nothing(aiohttp_client, make_settings, real_redis):
    client = await aiohttp_client(
        create_app(make_settings(tokens=[TOKEN], redis_url=real_redis.url, redis_prefix=real_redis.prefix))
    )
    async with client.delete("/shop", json={"images": ["missing.png"]}, headers=AUTH) as resp:
        assert resp.status == 404
    assert await stream_events(real_redis) == []


async def test_embedded_default_handles_events_in_process(aiohttp_client, make_settings):
    handler = RecordingHandler()
    client = await aiohttp_client(
        create_app(make_settings(tokens=[TOKEN]), handler_factory=lambda *_: contextlib.nullcontext(handler))
    )
    async with client.post("/", data=upload_form("a.png"), headers=AUTH) as resp:
        etag = (await resp.json())["images"][0]["etag"]
    async with client.delete("/", json={"images": ["a.png"]}, headers=AUTH) as resp:
        assert resp.status == 200
    await eventually(lambda: len(handler.events) == 2)
    assert handler.events == [
        StorageEvent("created", "a.png", etag, "origin"),
        StorageEvent("removed", "a.png", None, "origin"),
    ]


async def test_in_process_queue_is_bounded(caplog):
    release = asyncio.Event()

    class Blocked(RecordingHandler):
        async def handle(self, event: StorageEvent) -> None:
            await release.wait()
            await super().handle(event)

    handler = Blocked()
    emitter = QueueEmitter(handler, size=1)
    first, second, third = (StorageEvent("created", f"{n}.jpg", None, "origin") for n in range(3))
    await emitter.emit(first)
    await asyncio.sleep(0)  # the consumer takes it and waits
    await emitter.emit(second)
    await emitter.emit(third)
    assert "dropped created '2.jpg'" in caplog.text
    release.set()
    await eventually(lambda: len(handler.events) == 2)
    await emitter.close()
    assert handler.events == [first, second]
