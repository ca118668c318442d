"""S3 notifications from an SQS queue (AWS, or moto in the tests), by long polling.

A message is deleted only once every event in it has been handled. A failed one is left
in the queue and hidden for a doubling delay (ChangeMessageVisibility), so a broken
object or a down dependency costs a few tries an hour, not a retry storm. A message
received more than `events_max_deliveries` times is logged and deleted, unless the queue
has a redrive policy: then SQS itself moves it to the dead-letter queue, where it can be
looked at. A message we cannot parse is logged and deleted at once (retrying cannot help).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from origin.settings import WorkerConfig
from origin.storage_events import Handler, MalformedEvent

from ..events import Scope, parse_message
from . import backoff, until_stopped

log = logging.getLogger("workers.sqs")
_MAX_BATCH = 10
"""ReceiveMessage returns at most 10 messages."""
_TRANSIENT = (BotoCoreError, ClientError, aiohttp.ClientError, OSError, asyncio.TimeoutError)
_UNREACHABLE = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
    aiohttp.ClientError,
    OSError,
    asyncio.TimeoutError,
)
"""No answer at all (as opposed to SQS refusing the queue): maybe not up yet, so retried."""


class SqsSource:
    def __init__(self, config: WorkerConfig, handler: Handler) -> None:
        if config.sqs_queue_url is None:
            raise ValueError("SqsSource needs sqs_queue_url")
        self.queue_url = config.sqs_queue_url
        self.endpoint_url = config.sqs_endpoint_url
        self.handler = handler
        self.scope = Scope.of(config.storage_url)
        self.wait_seconds = config.sqs_wait_seconds
        self.batch = min(_MAX_BATCH, config.concurrency)
        self.max_deliveries = config.max_deliveries
        self.retry_base = config.retry_base
        self.retry_cap = config.retry_cap
        self.dead_letter = False
        """Whether the queue has a redrive policy (read once at start)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop`; a queue that is missing or forbidden fails here, at start."""
        config = AioConfig(
            read_timeout=self.wait_seconds + 10,  # a long poll is not a hung connection
            retries={"mode": "standard", "max_attempts": 3},
        )
        async with get_session().create_client("sqs", endpoint_url=self.endpoint_url, config=config) as client:
            reply = await self._attributes(client, stop)
            if reply is None:
                return  # stopped while SQS could not be reached
            self.dead_letter = "RedrivePolicy" in reply.get("Attributes", {})
            log.info("reading %s (dead-letter queue: %s)", self.queue_url, "yes" if self.dead_letter else "no")
            await self._poll(client, stop)

    async def _attributes(self, client: Any, stop: asyncio.Event) -> dict[str, Any] | None:
        """The queue's redrive policy, once SQS answers: an unreachable endpoint is retried with a
        doubling pause (1 s up to 30 s) and logged; a queue that SQS refuses fails at once."""
        failures = 0
        while not stop.is_set():
            try:
                attributes = client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"])
                finished, reply = await until_stopped(stop, attributes)
                return reply if finished else None
            except _UNREACHABLE as exc:
                failures += 1
                pause = backoff(failures, 1.0, 30.0)
                log.warning(
                    "cannot reach SQS at %s (%s: %s); trying again in %g s",
                    self.endpoint_url or "the AWS endpoint",
                    type(exc).__name__,
                    exc,
                    pause,
                )
                await until_stopped(stop, asyncio.sleep(pause))
        return None

    async def _poll(self, client: Any, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            receive = client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch,
                WaitTimeSeconds=self.wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
            try:
                finished, reply = await until_stopped(stop, receive)
            except _TRANSIENT as exc:
                failures += 1
                pause = backoff(failures, 1.0, 30.0)
                log.warning("receiving from SQS failed (%s: %s); trying again in %g s", type(exc).__name__, exc, pause)
                await until_stopped(stop, asyncio.sleep(pause))
                continue
            if not finished or reply is None:
                return
            failures = 0
            # Once received, a batch is finished even if `stop` is set meanwhile.
            await asyncio.gather(*(self._process(client, message) for message in reply.get("Messages", [])))

    async def _process(self, client: Any, message: dict[str, Any]) -> None:
        receipt = message["ReceiptHandle"]
        received = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        if received > self.max_deliveries and not self.dead_letter:
            log.error(
                "dropping SQS message %s: received %d times, its events never succeeded: %.500s",
                message.get("MessageId"),
                received,
                message.get("Body"),
            )
            await self._delete(client, receipt)
            return
        try:
            events = parse_message(message.get("Body", ""), self.scope)
        except MalformedEvent as exc:
            log.warning("dropping SQS message %s: %s: %.500s", message.get("MessageId"), exc, message.get("Body"))
            await self._delete(client, receipt)
            return
        try:
            for event in events:
                await self.handler.handle(event)
        except Exception as exc:  # noqa: BLE001 - any handler failure means "try again later"
            delay = math.ceil(backoff(received, self.retry_base, self.retry_cap))
            log.warning(
                "event of SQS message %s failed (%s: %s); retrying in %d s (receive %d)",
                message.get("MessageId"),
                type(exc).__name__,
                exc,
                delay,
                received,
            )
            with contextlib.suppress(*_TRANSIENT):  # if this fails, the visibility timeout still ends
                await client.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=delay
                )
            return
        await self._delete(client, receipt)

    async def _delete(self, client: Any, receipt: str) -> None:
        try:
            await client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        except _TRANSIENT as exc:
            log.warning("could not delete an SQS message (%s); it will be delivered again", exc)
