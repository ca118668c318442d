"""`image-origin worker`: run every configured event source against one handler until SIGTERM.

Sources, by setting: the SQS queue (`sqs_queue_url`), the webhook (`worker_port`, which
needs Redis to queue what it accepts) and the Redis stream (`redis_url`: the origin's own
writes and the webhook's). On SIGTERM or SIGINT each stops receiving, finishes the events
it holds and returns; one that fails stops the others, and the process exits non-zero
for its supervisor to restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import Callable
from typing import cast

from origin.settings import Settings

from .events import enter_handler
from .sources import Source
from .sources.sqs import SqsSource
from .sources.stream import StreamConsumer
from .sources.webhook import WebhookSource, webhook_tokens

WorkerHandlerFactory = Callable[[Settings], object]
"""Makes the handler: the handler, an awaitable of it, or an async context manager yielding it."""
DEFAULT_FACTORY = ("workers.handler", "build_handler")
log = logging.getLogger("workers")


class WorkerError(Exception):
    """The worker cannot start as configured; the message says what to set."""


async def run_worker(
    settings: Settings, handler_factory: WorkerHandlerFactory | None = None, *, stop: asyncio.Event | None = None
) -> None:
    """Run until `stop` is set (by default: on SIGTERM/SIGINT), then drain and return."""
    check_sources(settings)
    factory = handler_factory or default_factory()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    try:
        async with contextlib.AsyncExitStack() as stack:
            handler = await enter_handler(stack, factory(settings))
            sources: list[Source] = []
            if settings.sqs_queue_url is not None:
                sources.append(SqsSource(settings, handler))
            if settings.worker_port is not None:
                sources.append(WebhookSource(settings))
            if settings.redis_url is not None:
                sources.append(StreamConsumer(settings, handler))
            await _run_all(sources, stop)
    finally:
        for number in signals:
            loop.remove_signal_handler(number)


def check_sources(settings: Settings) -> None:
    """WorkerError unless at least one source is configured, and configured completely."""
    if settings.sqs_queue_url is None and settings.worker_port is None and settings.redis_url is None:
        raise WorkerError("nothing to read events from: set sqs_queue_url, redis_url, or worker_port with redis_url")
    if settings.worker_port is not None:
        if settings.redis_url is None:
            raise WorkerError(
                "the webhook (worker_port) needs redis_url: events are answered 200 only once queued in Redis"
            )
        try:
            webhook_tokens(settings)
        except ValueError as exc:
            raise WorkerError(str(exc)) from None


def default_factory() -> WorkerHandlerFactory:
    """`workers.handler.build_handler`, imported only now (it brings the renderer with it)."""
    module_name, name = DEFAULT_FACTORY
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise WorkerError(f"no event handler: {module_name} is not installed") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise WorkerError(f"no event handler: {module_name} has no {name}(settings)")
    return cast(WorkerHandlerFactory, factory)


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
            log.error("event source %s failed: %s: %s", task.get_name(), type(result).__name__, result)
            raise result
    log.info("worker stopped: %s drained", ", ".join(task.get_name() for task in tasks))
