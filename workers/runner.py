"""`image-origin worker`: run every configured event source against one handler until SIGTERM.

Sources, by setting: the SQS queue (`sqs_queue_url`), the webhook (`worker_port`, which
needs Redis to queue what it accepts) and the Redis stream (`redis_url`: the origin's own
writes and the webhook's). On SIGTERM or SIGINT each stops receiving, finishes the events
it holds and returns; one that fails stops the others, and the process exits non-zero
for its supervisor to restart it. At start it logs what it reads and where its
pre-rendered variants go.

With no source configured (the embedded default: no Redis, no queue) the origin handles
its own uploads in its process, so there is nothing to do; the worker says so once and
stays up idle until SIGTERM, so that a Procfile runner (honcho, foreman), which stops
every process when one exits, keeps the web process running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from urllib.parse import urlsplit, urlunsplit

from origin.settings import Configs, Settings, StorageConfig, WorkerConfig
from origin.storage_events import Handler

from .handler import build_handler
from .sources import Source
from .sources.sqs import SqsSource
from .sources.stream import GROUP, StreamConsumer
from .sources.webhook import PATH as WEBHOOK_PATH
from .sources.webhook import WebhookSource, webhook_tokens

WorkerHandlerFactory = Callable[[Configs], AbstractAsyncContextManager[Handler]]
"""Makes the handler: an async context manager yielding it, entered while the sources run."""
log = logging.getLogger("workers")


class WorkerError(Exception):
    """The worker cannot start as configured; the message says what to set."""


async def run_worker(
    settings: Settings, handler_factory: WorkerHandlerFactory | None = None, *, stop: asyncio.Event | None = None
) -> None:
    """Run until `stop` is set (by default: on SIGTERM/SIGINT), then drain and return."""
    configs = settings.configs()
    worker = configs.worker
    configured = check_sources(worker)
    factory = handler_factory or build_handler
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    try:
        if not configured:
            log.info(
                "no event source configured (sqs_queue_url, redis_url, worker_port): on the embedded default the "
                "web process handles its own uploads in process; idle until SIGTERM"
            )
            await stop.wait()
            return
        log.info("worker: %s; %s", "; ".join(describe_sources(worker)), describe_target(configs.storage))
        async with contextlib.AsyncExitStack() as stack:
            handler = await stack.enter_async_context(factory(configs))
            sources: list[Source] = []
            if worker.sqs_queue_url is not None:
                sources.append(SqsSource(worker, handler))
            if worker.port is not None:
                sources.append(WebhookSource(worker))
            if worker.redis_url is not None:
                sources.append(StreamConsumer(worker, handler))
            await _run_all(sources, stop)
    finally:
        for number in signals:
            loop.remove_signal_handler(number)


def check_sources(config: WorkerConfig) -> bool:
    """Whether any source is configured; WorkerError for one configured incompletely."""
    if config.sqs_queue_url is None and config.port is None and config.redis_url is None:
        return False
    if config.port is not None:
        if config.redis_url is None:
            raise WorkerError(
                "the webhook (worker_port) needs redis_url: events are answered 200 only once queued in Redis"
            )
        try:
            webhook_tokens(config)
        except ValueError as exc:
            raise WorkerError(str(exc)) from None
    return True


def describe_sources(config: WorkerConfig) -> list[str]:
    """What the worker reads, one phrase a source (credentials and tokens never named)."""
    described = []
    stream = config.stream
    if config.sqs_queue_url is not None:
        endpoint = config.sqs_endpoint_url or "the AWS endpoint"
        described.append(f"reading SQS queue {config.sqs_queue_url} at {endpoint}")
    if config.port is not None:
        described.append(f"webhook on {config.host}:{config.port}{WEBHOOK_PATH} into {stream}")
    if config.redis_url is not None:
        described.append(f"reading Redis stream {stream} (group {GROUP}) at {_without_password(config.redis_url)}")
    return described


def describe_target(config: StorageConfig) -> str:
    url = config.derived_url
    where = f"pre-rendered variants to {url}" if url is not None else "no derived storage (nothing pre-rendered)"
    return f"originals in {config.url}, {where}"


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def _run_all(sources: list[Source], stop: asyncio.Event) -> None:
    """Every source side by side; the first to fail stops the rest, then its error is raised."""
    tasks = [asyncio.create_task(source.run(stop), name=type(source).__name__) for source in sources]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise WorkerError(f"event source {task.get_name()} failed: {type(result).__name__}: {result}") from result
    log.info("worker stopped: %s drained", ", ".join(task.get_name() for task in tasks))
