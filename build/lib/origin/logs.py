"""What an operator reads: log set-up (text or JSON lines), the access log, libvips' warnings.

- `setup_logging` configures the root logger once per process, from `log_level` and
  `log_format` (`text`, or `json`: one JSON object a line, for a log shipper).
- `AccessLog` is aiohttp's access-log hook: called after each response is written, so the
  byte count and the duration are the real ones (streamed bodies included).
- libvips warnings (`VIPS: unknown EXIF resolution unit`, three per render of some JPEGs)
  say nothing an operator can act on: they are counted (`image_origin_libvips_warnings_total`)
  and logged at DEBUG on `origin.vips`, never at WARNING.
- `causes` spells an exception chain on one line, so a 5xx's log says *why* (the
  NoCredentialsError or the timeout under a StorageError) without a traceback per request.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from .http.requests import request_id

ACCESS_LOGGER = "origin.access"
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_EXTRA_FIELDS = ("request_id", "status", "code", "method", "path", "cause")
"""Structured fields some records carry (`extra=`); JSON lines include them as keys."""


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the structured extras, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*_EXTRA_FIELDS, *getattr(record, "fields", ())):
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str, fmt: str) -> None:
    """The process's log handler, on stderr, in `fmt` ("text" or "json"); libvips' warnings captured.

    Called again (several commands in one process, the tests), it replaces only its own handler.
    """
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter(_TEXT_FORMAT)
    _HANDLER.setFormatter(formatter)
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    root.setLevel(level)
    capture_libvips_warnings()


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (as logging's last resort does), never a closed copy."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_HANDLER = _Stderr()


class _LibvipsWarnings(logging.Filter):
    """On pyvips' logger: counts each libvips warning and re-logs it at DEBUG on `origin.vips`."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.count = 0
        self._debug = logging.getLogger("origin.vips")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False  # libvips' info chatter: per render, never useful in production
        with self._lock:
            self.count += 1
        self._debug.debug("%s", record.getMessage())
        return False


_VIPS = _LibvipsWarnings()


def capture_libvips_warnings() -> None:
    """Install the libvips filter (idempotent: create_app calls it, so every app counts)."""
    pyvips_logger = logging.getLogger("pyvips")
    pyvips_logger.setLevel(logging.WARNING)  # below it, the filter is not even called
    if _VIPS not in pyvips_logger.filters:
        pyvips_logger.addFilter(_VIPS)


def libvips_warnings() -> int:
    """libvips warnings seen by this process since start."""
    return _VIPS.count


def causes(exc: BaseException) -> list[str]:
    """`Type: message` for the exception and each cause or context behind it, outermost first."""
    chain: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(chain) < 8:
        seen.add(id(current))
        text = str(current)
        chain.append(f"{type(current).__name__}: {text}" if text else type(current).__name__)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain


class AccessLog(AbstractAccessLogger):
    """One line per request: Combined Log Format plus the duration and the request id.

    `203.0.113.9 - - [04/Dec/2026:18:00:00 +0000] "GET /a.jpg?w=100 HTTP/1.1" 200 5120 "-" "curl/8.5" 0.012 3f2a...`
    With `log_format: json` the same fields are keys of the JSON line instead.
    """

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:  # noqa: A002 - aiohttp's name
        fields: dict[str, Any] = {
            "remote": request.remote or "-",
            "method": request.method,
            "path": request.raw_path,
            "protocol": f"HTTP/{request.version.major}.{request.version.minor}",
            "status": response.status,
            "bytes": _body_bytes(request, response),
            "duration": round(time, 6),
            "request_id": request_id(request),
            "referer": request.headers.get("Referer", "-"),
            "user_agent": request.headers.get("User-Agent", "-"),
        }
        stamp = _clf_time()
        line = (
            f'{fields["remote"]} - - [{stamp}] "{_quote(request.method)} {_quote(request.raw_path)} '
            f'{fields["protocol"]}" {response.status} {fields["bytes"]} "{_quote(fields["referer"])}" '
            f'"{_quote(fields["user_agent"])}" {time:.3f} {fields["request_id"]}'
        )
        self.logger.info(line, extra={**fields, "fields": tuple(fields)})


def _body_bytes(request: BaseRequest, response: StreamResponse) -> int:
    """The body's bytes (as Combined's %b, headers excluded); for a chunked body, all bytes written."""
    if request.method == "HEAD":
        return 0
    return response.content_length if response.content_length is not None else response.body_length


def _clf_time() -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())


def _quote(text: str) -> str:
    """A field safe inside double quotes on one line: quotes, backslashes, controls and non-ASCII escaped."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
