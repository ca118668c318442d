"""The listening side: the socket, a deadline on every phase of a connection, a connection cap.

aiohttp reads request headers and bodies with no deadline of its own (its keep-alive
timer only closes a connection that has not started a request): a client that sends a
header a byte a second, or declares 1,000 bytes and sends 10, holds its connection for
as long as it likes, and enough of them exhaust the process's file descriptors. So this
module owns the listening socket and watches every connection on it (once a second):

- headers: a request's headers must be complete within `header_timeout` of its first
  byte, or the connection is closed;
- body: a request body must have arrived within `body_timeout` of its headers, or the
  handler's read fails with 408 `request_timeout` and the connection is closed;
- idle keep-alive: aiohttp's own `keepalive_timeout`, which also closes a connection
  that never sends anything;
- a cap: past `max_connections` open connections (lowered to fit the file descriptor
  limit), a new connection gets a ready-made 503 and is closed at once: one accept and
  one write, nothing kept.

Each of these is counted and logged at most once per `LOG_INTERVAL`, never per
connection, so an attack cannot grow the log; asyncio's `socket.accept() out of system
resource` (a traceback per failed accept) is folded into the same count.

aiohttp's own answers to requests it cannot parse (a request line over 8190 bytes, a
header over the field limit, garbage) are the service's JSON error body with nosniff,
never an echo of the request; an absolute-form target (`GET http://host/key HTTP/1.1`,
which RFC 9112 3.2.2 says a server must accept) is served as its origin-form `/key`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import resource
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler
from yarl import URL

from .errors import RequestTimeout
from .http.middlewares import SECURITY_HEADERS, error_response
from .settings import ConnectionsConfig

log = logging.getLogger("origin.server")

LOG_INTERVAL = 60.0
"""At most one line per interval about refused, cut or failed connections."""
_TICK = 1.0
_FD_HEADROOM = 256
"""File descriptors kept for storage files, S3 and Redis connections, logs."""
_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


class ConnectionGuard:
    """Every open connection of one server, its deadlines, the cap, and what was refused."""

    def __init__(self, server: web.Server, config: ConnectionsConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.header_timeout = config.header_timeout
        self.body_timeout = config.body_timeout
        self.cap = _fitting_cap(config.max_connections)
        self.connections: set[GuardedHandler] = set()
        self.counts: collections.Counter[str] = collections.Counter()
        self._logged_at = loop.time()
        self._refusal = _refusal(config.retry_after)
        self._watchdog: asyncio.Task[None] | None = None
        self.error_cache_control = config.error_cache_control
        inner = server.request_handler
        server.request_handler = lambda request: self._handle(request, inner)

    def protocol(self) -> asyncio.Protocol:
        """The protocol factory the listening socket uses: a guarded handler, or a refusal.

        A handler counts from here, not from `connection_made`: asyncio accepts a batch of
        connections before any of them is told, and the cap must hold within a batch.
        """
        if len(self.connections) >= self.cap:
            self.count("refused past the connection cap")
            return _Refusal(self._refusal)
        # Server._kwargs: the handler arguments aiohttp's own factory passes (timeouts, field limits).
        handler = GuardedHandler(self, self.server, loop=self.loop, **self.server._kwargs)
        self.connections.add(handler)
        return handler

    def count(self, what: str) -> None:
        self.counts[what] += 1

    def start(self) -> None:
        self._watchdog = self.loop.create_task(self._watch())

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        self._report(force=True)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(_TICK)
            now = self.loop.time()
            for connection in list(self.connections):
                connection.check(now)
            self._report()

    def _report(self, force: bool = False) -> None:
        now = self.loop.time()
        if self.counts and (force or now - self._logged_at >= LOG_INTERVAL):
            summary = ", ".join(f"{count} {what}" for what, count in sorted(self.counts.items()))
            log.warning("connections in the last %.0f s: %s", now - self._logged_at, summary)
            self.counts.clear()
            self._logged_at = now

    async def _handle(
        self, request: web.BaseRequest, inner: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Every parsed request: its body deadline starts, an absolute-form target is made origin-form."""
        connection = request.protocol
        if not isinstance(connection, GuardedHandler):
            return await inner(request)
        connection.begin(request, self.loop.time() + self.body_timeout)
        try:
            response = await inner(_origin_form(request))
            if connection.body_expired:
                response.force_close()
            return response
        finally:
            connection.end()

    def accept_failed(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> bool:
        """Fold asyncio's per-accept tracebacks (out of file descriptors) into the count."""
        if str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            self.count("accepts failed (out of file descriptors)")
            return True
        return False


class GuardedHandler(RequestHandler):
    """aiohttp's connection handler, with the phase it is in and JSON for its own errors."""

    __slots__ = ("_guard", "_created", "_first_byte", "_request", "_body_deadline", "body_expired")

    def __init__(self, guard: ConnectionGuard, manager: web.Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._created = guard.loop.time()
        self._first_byte: float | None = None
        self._request: web.BaseRequest | None = None
        self._body_deadline: float | None = None
        self.body_expired = False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.connections.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._request is None and self._first_byte is None:
            self._first_byte = self._guard.loop.time()  # a request has begun: its headers' clock starts
        super().data_received(data)

    def begin(self, request: web.BaseRequest, body_deadline: float) -> None:
        self._request = request
        self._first_byte = None
        self.body_expired = False
        self._body_deadline = body_deadline if request.body_exists and not request.content.is_eof() else None

    def end(self) -> None:
        self._request = None
        self._body_deadline = None

    def check(self, now: float) -> None:
        """Close a connection whose headers are late; fail a request whose body is late."""
        request = self._request
        transport = self.transport
        if transport is None and now - self._created > self._guard.header_timeout:
            self._guard.connections.discard(self)  # never connected (the accept failed): not a connection
        elif request is None:
            writing = transport is not None and transport.get_write_buffer_size() > 0
            if self._first_byte is not None and now - self._first_byte > self._guard.header_timeout and not writing:
                self._guard.count("closed past the header deadline")
                self.force_close()
        elif self._body_deadline is not None and now > self._body_deadline:
            self._body_deadline = None
            if not request.content.is_eof():
                self._guard.count("bodies past the body deadline")
                self.body_expired = True
                request.content.set_exception(
                    RequestTimeout(f"the request body did not arrive within {self._guard.body_timeout:g} s")
                )

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        """aiohttp's own errors as the service's JSON errors: never the request echoed, never a
        traceback in the log for a client's garbage (counted instead)."""
        if request.writer.output_size > 0:
            raise ConnectionError("the response has started: the connection is cut instead")
        if status >= 500:  # logged once by error_response, with its cause
            response = error_response(request, status, "internal_error", "internal error", cache_control="", cause=exc)
        else:
            self._guard.count("unparseable requests")
            code, status, text = _parse_error(exc, self._guard.server._kwargs.get("max_field_size"))
            response = error_response(request, status, code, text, cache_control=self._guard.error_cache_control)
        response.force_close()
        return response


def _parse_error(exc: BaseException | None, field_limit: object) -> tuple[str, int, str]:
    """(code, status, message) for a request aiohttp could not parse; nothing of it is echoed."""
    if isinstance(exc, LineTooLong):
        if exc.args[1] == field_limit:
            return "header_too_large", 431, "a request header is too large"
        return "uri_too_long", 414, "the request line is too long"
    if isinstance(exc, BadHttpMethod):
        return "bad_request", 400, "the request method is not valid HTTP"
    return "bad_request", 400, "the request could not be parsed as HTTP/1.1"


def _origin_form(request: web.BaseRequest) -> web.BaseRequest:
    """`GET http://host/key?w=1` as `GET /key?w=1` (the raw path kept exactly as sent)."""
    target = request.raw_path
    if target.startswith("/"):
        return request
    found = _ABSOLUTE_FORM.match(target)
    if found is None:
        return request
    rest = target[found.end() :]
    return request.clone(rel_url=URL(rest if rest.startswith("/") else "/" + rest, encoded=True))


class _Refusal(asyncio.Protocol):
    """A connection past the cap: a ready-made 503, then closed."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self._answer)  # type: ignore[attr-defined]
        transport.close()


def _refusal(retry_after: int) -> bytes:
    """The 503 for a connection past the cap, as bytes on the wire, made once.

    Not built by `error_response`: there is no request (nothing is read from a refused
    connection), so the body is the same shape with no request id, and nosniff as always.
    """
    body = json.dumps({"error": {"code": "overloaded", "message": "too many connections; retry shortly"}}).encode()
    head = [
        "HTTP/1.1 503 Service Unavailable",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(body)}",
        f"Retry-After: {retry_after}",
        "Cache-Control: no-store",
        *(f"{name}: {value}" for name, value in SECURITY_HEADERS.items()),
        "Connection: close",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _fitting_cap(wanted: int) -> int:
    """`wanted`, or fewer if the file descriptor limit (raised to its hard limit) cannot hold them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or hard > soft):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft == resource.RLIM_INFINITY or wanted + _FD_HEADROOM <= soft:
        return wanted
    fitting = max(1, soft - _FD_HEADROOM)
    log.warning("max_connections %d lowered to %d to fit the file descriptor limit (%d)", wanted, fitting, soft)
    return fitting


class OriginServer:
    """The app on a socket it owns, with the guard; `start` then `stop` (drains, like SIGTERM)."""

    def __init__(self, app: web.Application, config: ConnectionsConfig, **runner_kwargs: Any) -> None:
        self.app = app
        self.config = config
        runner_kwargs.setdefault("shutdown_timeout", config.shutdown_timeout)
        self.runner = web.AppRunner(app, keepalive_timeout=config.keepalive_timeout, **runner_kwargs)
        self.guard: ConnectionGuard | None = None
        self._listener: asyncio.Server | None = None
        self._previous_handler: Any = None

    @property
    def port(self) -> int:
        assert self._listener is not None
        return int(self._listener.sockets[0].getsockname()[1])

    async def start(self, host: str | None = None, port: int | None = None) -> None:
        await self.runner.setup()
        loop = asyncio.get_running_loop()
        assert self.runner.server is not None
        self.guard = guard = ConnectionGuard(self.runner.server, self.config, loop)
        self._previous_handler = previous = loop.get_exception_handler()

        def exceptions(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if not guard.accept_failed(loop, context):
                (previous or _default_handler)(loop, context)

        loop.set_exception_handler(exceptions)
        self._listener = await loop.create_server(
            guard.protocol,
            self.config.host if host is None else host,
            self.config.port if port is None else port,
            backlog=1024,
        )
        guard.start()
        for sock in self._listener.sockets:
            name = sock.getsockname()
            log.info("listening on http://%s:%s (at most %d connections)", name[0], name[1], guard.cap)

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish, then close everything the app owns."""
        if self._listener is not None:
            self._listener.close()
        await self.runner.cleanup()
        if self.guard is not None:
            await self.guard.stop()
            asyncio.get_running_loop().set_exception_handler(self._previous_handler)


def _default_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    loop.default_exception_handler(context)


async def serve(app: web.Application, config: ConnectionsConfig, **runner_kwargs: Any) -> None:
    """Run until SIGTERM or SIGINT, then drain (renders in flight finish) and return."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    server = OriginServer(app, config, **runner_kwargs)
    try:
        await server.start()
        await stopping.wait()
    finally:
        await server.stop()


def run(app: web.Application, config: ConnectionsConfig, **runner_kwargs: Any) -> None:
    asyncio.run(serve(app, config, **runner_kwargs))
