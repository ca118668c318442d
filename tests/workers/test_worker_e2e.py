"""The worker end to end, over the real protocols: S3 bucket notifications -> SQS -> worker ->
derived bucket -> origin.

moto's server (the session's, on loopback) plays S3 and SQS. The originals bucket notifies
a queue of every create and remove; `run_worker(settings)` runs for real (the default
handler, as `image-origin worker` would) in this event loop; objects are put, overwritten
and deleted straight in the bucket with boto3, never through the origin; and an origin
built by `create_app` from the same settings serves what the worker left in derived
storage. Every wait is a bounded poll.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from origin.app import create_app
from origin.http.appkeys import SERVICE
from origin.settings import Settings
from tests.images import decode, jpeg, magic, png
from tests.s3 import PREFIX, REGION
from workers.runner import run_worker

PRESETS = """
presets:
  thumb: {w: 40, h: 30, fit: crop, warm: true}
  card: {w: 48, auto: format, warm: true}
  hero: {w: 60}
"""
KEY = "shop/red shoe.jpg"
"""In the event body moto sends `shop/red+shoe.jpg`: decoding is exercised too."""
URL = "/" + quote(KEY)
POLL_SECONDS = 15.0
AVIF, WEBP = {"Accept": "image/avif,image/webp,*/*"}, {"Accept": "image/webp,*/*"}

Variant = tuple[str, str, int, int]
"""(stored Content-Type, format by magic bytes, width, height) of one derived object."""


def wanted(legacy: str, mime: str, card: tuple[int, int]) -> set[Variant]:
    """thumb once (the source's format), card once per format auto=format can pick; hero never."""
    return {
        (mime, legacy, 40, 30),
        ("image/avif", "avif", *card),
        ("image/webp", "webp", *card),
        (mime, legacy, *card),
    }


FIRST = wanted("jpg", "image/jpeg", (48, 36))  # from a 120x90 JPEG
SECOND = wanted("png", "image/png", (48, 24))  # from a 200x100 PNG


@dataclass
class World:
    s3: Any
    sqs: Any
    bucket: str
    derived_bucket: str
    queue_url: str
    settings: Settings
    worker: asyncio.Task[None] | None = None

    @property
    def original(self) -> str:
        return f"{PREFIX}/{KEY}"

    async def derived(self) -> dict[str, Variant]:
        """Every object derived storage holds for KEY: variant name -> what it is."""

        def read() -> dict[str, Variant]:
            prefix = f"variants/{KEY}/"
            listed = self.s3.list_objects_v2(Bucket=self.derived_bucket, Prefix=prefix).get("Contents", [])
            found = {}
            for item in listed:
                try:
                    obj = self.s3.get_object(Bucket=self.derived_bucket, Key=item["Key"])
                except self.s3.exceptions.NoSuchKey:
                    continue  # pruned between the listing and the read
                body = obj["Body"].read()
                image = decode(body)
                found[item["Key"].removeprefix(prefix)] = (obj["ContentType"], magic(body), image.width, image.height)
            return found

        return await asyncio.to_thread(read)

    async def queued(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        reply = await asyncio.to_thread(self.sqs.get_queue_attributes, QueueUrl=self.queue_url, AttributeNames=names)
        return sum(int(reply["Attributes"][name]) for name in names)

    async def until(self, what: str, check: Callable[[], Awaitable[tuple[bool, Any]]]) -> Any:
        """Poll `check` (-> done, what it saw) until done; then what it saw. Fails naming `what`."""
        deadline = time.monotonic() + POLL_SECONDS
        seen: Any = None
        while time.monotonic() < deadline:
            if self.worker is not None and self.worker.done():
                self.worker.result()  # raises what killed it
                pytest.fail(f"the worker stopped while waiting for {what}")
            done, seen = await check()
            if done:
                return seen
            await asyncio.sleep(0.05)
        pytest.fail(f"not within {POLL_SECONDS:g} s: {what} (last seen: {seen!r})")


@pytest.fixture
async def world(s3_raw: tuple[Any, str], s3_url: str, s3_endpoint: str, tmp_path: Path) -> AsyncIterator[World]:
    """Two buckets, a queue the originals bucket notifies, settings pointing at all three."""
    s3, bucket = s3_raw
    sqs = boto3.client("sqs", endpoint_url=s3_endpoint, region_name=REGION)
    derived_bucket = f"{bucket}-derived"
    s3.create_bucket(Bucket=derived_bucket)
    queue_url = sqs.create_queue(QueueName=f"e2e-{uuid.uuid4().hex}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]
        },
    )
    presets = tmp_path / "presets.yaml"
    presets.write_text(PRESETS)
    settings = Settings(
        storage_url=s3_url,
        derived_storage_url=f"s3://{derived_bucket}/variants?endpoint_url={s3_endpoint}&region={REGION}",
        presets=presets,
        sqs_queue_url=queue_url,
        sqs_endpoint_url=s3_endpoint,
        sqs_wait_seconds=1,  # a stop never waits out a long poll anyway; this keeps moto's threads short
        events_retry_base=1,  # a failure would be retried within the test's bounds
        metadata_ttl=0,  # the origin sees an out-of-band overwrite at once (README: within metadata_ttl)
        render_workers=2,
    )
    yield World(s3, sqs, bucket, derived_bucket, queue_url, settings)
    for name in (bucket, derived_bucket):
        listed = s3.list_objects_v2(Bucket=name).get("Contents", [])
        if listed:
            s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": item["Key"]} for item in listed]})
        s3.delete_bucket(Bucket=name)
    sqs.delete_queue(QueueUrl=queue_url)


def handled(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str, str]]:
    """(kind, key, source, outcome) of every event the worker's handler finished, in order."""
    return [
        tuple(record.args)  # type: ignore[misc]
        for record in caplog.records
        if record.name == "workers.handler" and record.msg == "%s %s (%s): %s"
    ]


async def get(client: Any, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    async with client.get(path, headers=headers or {}) as resp:
        return resp.status, resp.headers.copy(), await resp.read()  # case-insensitive


def described(body: bytes) -> tuple[str, int, int]:
    image = decode(body)
    return magic(body), image.width, image.height


async def test_bucket_events_prerender_serve_replace_and_remove(world: World, aiohttp_client, caplog):
    caplog.set_level(logging.INFO, logger="workers")
    stop = asyncio.Event()

    # The notification configuration made S3 send its s3:TestEvent to the queue. Look at it
    # (and leave it visible) so we know what the worker is about to skip.
    received = world.sqs.receive_message(QueueUrl=world.queue_url, WaitTimeSeconds=0)["Messages"]
    assert [json.loads(m["Body"])["Event"] for m in received] == ["s3:TestEvent"]
    world.sqs.change_message_visibility(
        QueueUrl=world.queue_url, ReceiptHandle=received[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    started = time.monotonic()
    world.worker = asyncio.create_task(run_worker(world.settings, stop=stop))
    try:
        async with asyncio.timeout(30):
            await world.until("the s3:TestEvent deleted", _zero(world.queued))
            assert handled(caplog) == []  # deleted without reaching the handler

            client = await aiohttp_client(create_app(world.settings))
            service = client.app[SERVICE]

            # (1) An object put straight into the bucket is pre-rendered by the worker.
            t0 = time.monotonic()
            await asyncio.to_thread(world.s3.put_object, Bucket=world.bucket, Key=world.original, Body=jpeg(120, 90))
            first = await world.until("the first version's variants", _holds(world, FIRST))
            t_first = time.monotonic() - t0

            # (2) The origin serves them from derived storage, rendering nothing.
            status, headers, body = await get(client, f"{URL}?preset=thumb")
            assert status == 200 and headers["X-Cache"] == "derived"
            assert headers["Content-Type"] == "image/jpeg" and described(body) == ("jpg", 40, 30)
            assert headers["ETag"].strip('"') in first
            status, headers, body = await get(client, f"{URL}?preset=card", AVIF)
            assert status == 200 and headers["X-Cache"] == "derived" and headers["Vary"] == "Accept"
            assert headers["Content-Type"] == "image/avif" and described(body) == ("avif", 48, 36)
            assert first[headers["ETag"].strip('"')] == ("image/avif", "avif", 48, 36)
            status, headers, body = await get(client, f"{URL}?preset=card", WEBP)
            assert headers["X-Cache"] == "derived" and described(body) == ("webp", 48, 36)
            status, headers, body = await get(client, f"{URL}?preset=card")
            assert headers["X-Cache"] == "derived" and described(body) == ("jpg", 48, 36)
            assert service.pool.renders == 0

            # (3) Overwritten in the bucket: never the old image, and the old variants make way.
            t0 = time.monotonic()
            await asyncio.to_thread(world.s3.put_object, Bucket=world.bucket, Key=world.original, Body=png(200, 100))
            status, headers, body = await get(client, f"{URL}?preset=thumb")  # worker done or not: the new one
            assert status == 200 and described(body) == ("png", 40, 30)
            assert headers["ETag"].strip('"') not in first
            second = await world.until("the second version's variants, and none of the first's", _holds(world, SECOND))
            t_second = time.monotonic() - t0
            assert not set(second) & set(first)
            status, headers, body = await get(client, f"{URL}?preset=card", AVIF)
            assert headers["X-Cache"] == "derived" and described(body) == ("avif", 48, 24)
            assert headers["ETag"].strip('"') in second
            status, headers, body = await get(client, f"{URL}?preset=card")
            assert headers["X-Cache"] == "derived" and described(body) == ("png", 48, 24)
            status, headers, body = await get(client, f"{URL}?preset=hero")  # not warm: rendered on demand
            assert headers["X-Cache"] == "miss" and described(body) == ("png", 60, 30)

            # (4) Deleted from the bucket: every derived variant goes, and the origin answers 404.
            t0 = time.monotonic()
            await asyncio.to_thread(world.s3.delete_object, Bucket=world.bucket, Key=world.original)
            await world.until("no derived variant left", _empty(world))
            t_removed = time.monotonic() - t0
            for path, headers_ in ((f"{URL}?preset=card", AVIF), (f"{URL}?preset=thumb", None), (URL, None)):
                status, _, body = await get(client, path, headers_)
                assert status == 404 and json.loads(body)["error"]["code"] == "not_found"

            # Every message was deleted once handled; each event was handled once, in order.
            await world.until("an empty queue", _zero(world.queued))
            assert handled(caplog) == [
                ("created", KEY, "aws", "rendered"),
                ("created", KEY, "aws", "rendered"),
                ("removed", KEY, "aws", "removed"),
            ]
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await world.worker  # a clean stop: drained, handler closed, no error
    print(
        f"\nworker e2e: pre-rendered in {t_first:.2f} s, replaced in {t_second:.2f} s, "
        f"removed in {t_removed:.2f} s; {time.monotonic() - started:.2f} s in all"
    )
    complaints = [
        r.getMessage() for r in caplog.records if r.name.startswith("workers") and r.levelno >= logging.WARNING
    ]
    assert complaints == []  # no retry, no dropped message, no skipped spec


def _zero(count: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[tuple[bool, int]]]:
    async def check() -> tuple[bool, int]:
        seen = await count()
        return seen == 0, seen

    return check


def _holds(world: World, expected: set[Variant]) -> Callable[[], Awaitable[tuple[bool, dict[str, Variant]]]]:
    """Derived storage holds exactly the expected variants, one object each."""

    async def check() -> tuple[bool, dict[str, Variant]]:
        found = await world.derived()
        return sorted(found.values()) == sorted(expected), found

    return check


def _empty(world: World) -> Callable[[], Awaitable[tuple[bool, dict[str, Variant]]]]:
    async def check() -> tuple[bool, dict[str, Variant]]:
        found = await world.derived()
        return not found, found

    return check
