"""Checks made once at start, so a configuration mistake is one line and exit 2, not a 502 later.

- the management, webhook and metrics tokens are long enough to resist guessing;
- a configured `file://` folder exists (a typo would otherwise become a new, empty store
  with a new token); only the embedded default `./data` is created on first start;
- an S3 bucket answers HeadBucket with our credentials. Missing credentials, access denied,
  no such bucket: refused. A timeout or an unreachable endpoint may be a passing outage, so
  the process starts and says so loudly (ERROR); /_/ready reports it until S3 answers.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from .errors import StorageError, StorageTimeout
from .settings import DEFAULT_CONFIG, Settings
from .storage.location import local_folder

MIN_TOKEN_LENGTH = 16
"""Characters of a management, webhook or metrics token (generated ones have 43)."""
log = logging.getLogger("origin")


class StartupError(Exception):
    """The process cannot start as configured; the message says what to change (one line)."""


def check_listen(host: str, port: int) -> None:
    """Bind once and let go: a taken port is refused before anything else starts (and logs).

    run_serve still turns the real bind's OSError into the same line, for the race.
    """
    if port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp's own bind
            probe.bind(address)
    except OSError as exc:
        raise StartupError(listen_error(host, port, exc)) from None


def listen_error(host: str, port: int, exc: OSError) -> str:
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return f"cannot listen on {host}:{port}: {reason}"


def check_tokens(settings: Settings) -> None:
    named = [("tokens", token) for token in settings.tokens]
    named += [("worker_tokens", token) for token in settings.worker_tokens]
    if settings.metrics_token:
        named.append(("metrics_token", settings.metrics_token))
    for name, token in named:
        if len(token) < MIN_TOKEN_LENGTH:
            raise StartupError(
                f"{name}: a token of {len(token)} character(s) is too easy to guess; use at least {MIN_TOKEN_LENGTH}"
            )


def check_local_folder(settings: Settings) -> None:
    folder = local_folder(settings.storage_url)
    if folder is None or settings.storage_url == Settings.model_fields["storage_url"].default:
        return
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise StartupError(
            f"storage_url {settings.storage_url}: {folder.resolve()} {what} (create it, or fix the path)"
        )


async def check_s3(settings: Settings) -> None:
    if urlsplit(settings.storage_url).scheme != "s3":
        return
    from .storage.s3 import S3Storage

    storage = await S3Storage.open(settings.storage_url, min(settings.storage_timeout, 10.0))
    try:
        await storage.check_bucket()
    except StorageTimeout:
        log.error("storage %s did not answer at start; serving anyway (502/504 until it does)", settings.storage_url)
    except StorageError as exc:
        cause = exc.__cause__
        if _unreachable(cause):
            log.error(
                "storage %s is unreachable at start (%s: %s); serving anyway (502 until it answers)",
                settings.storage_url,
                type(cause).__name__,
                cause,
            )
            return
        because = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        raise StartupError(f"storage {settings.storage_url}: {exc.message}{because}") from None
    finally:
        await storage.close()


def _unreachable(cause: BaseException | None) -> bool:
    """A connection that could not be made: maybe a passing outage, not a configuration."""
    from botocore.exceptions import EndpointConnectionError

    return isinstance(cause, EndpointConnectionError | ConnectionError)


async def preflight(settings: Settings) -> None:
    """Every start-up check; StartupError for the first that fails."""
    check_tokens(settings)
    check_local_folder(settings)
    await check_s3(settings)


def describe_config(settings: Settings, config: Path) -> None:
    """Say which files are used, absolute, so a process started elsewhere is not silently bare."""
    if config.exists():
        log.info("settings: %s", config.resolve())
    else:
        log.info("settings: no %s in %s; defaults and IMAGE_ORIGIN_* only", DEFAULT_CONFIG, Path.cwd())
    presets = settings.presets
    if presets.exists():
        log.info("presets: %s", presets.resolve())
    else:
        log.warning(
            "presets: no %s (looked in %s): running without presets; set IMAGE_ORIGIN_PRESETS or start from the "
            "project folder",
            presets,
            Path.cwd(),
        )
    if (settings.signing_keys or settings.imgix_tokens) and not settings.require_signature:
        log.warning("signing: signatures are checked when present; unsigned URLs are served (require_signature is off)")
