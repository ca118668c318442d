"""`image-origin serve | worker | warm`: the commands users type (`python -m origin` / `python -m workers`).

A configuration the process cannot run with is one line on stderr and exit 2 (3 for an
unsafe libvips), never a traceback: bad settings or environment variables, a token too
short, a storage folder or bucket that is not there, a port already taken.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .logs import setup_logging
from .presets import PresetError
from .render import UnsafeLibvips
from .settings import ConfigError, Settings, config_path, load_settings
from .startup import StartupError, check_listen, describe_config, listen_error, preflight
from .storage.base import StorageUnusable

_CONFIG_HELP = "settings YAML (default config/settings.yaml in the current folder, or IMAGE_ORIGIN_CONFIG)"
_LISTEN_ERRORS = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image-origin", description="A self-hosted image origin.")
    parser.add_argument("--version", action="version", version=f"image-origin {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the HTTP origin",
        description="Serve originals and their transformed variants over HTTP, and the management API. "
        "Settings come from the YAML file, then IMAGE_ORIGIN_* environment variables, then these flags.",
    )
    serve.add_argument("--host", help="listen address (default from settings: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default from settings: 8080)")
    serve.add_argument("--config", type=Path, help=_CONFIG_HELP)
    worker = commands.add_parser(
        "worker",
        help="consume storage events: pre-render and invalidate",
        description="Read storage events (SQS, the webhook, the Redis stream) and pre-render, invalidate and "
        "purge for each. With none configured (the embedded default) it stays up idle: the origin handles "
        "its own uploads in its process.",
    )
    worker.add_argument("--config", type=Path, help=_CONFIG_HELP)
    warm = commands.add_parser(
        "warm",
        help="pre-render every existing original (resumable)",
        description="Pre-render the warm presets and popular specs of every original (or those under "
        "--prefix) into derived storage; interrupted, the same command resumes.",
    )
    warm.add_argument("--prefix", default="", help="only originals whose keys start with this")
    warm.add_argument("--presets", help="comma-separated presets to render (default: those marked warm)")
    warm.add_argument("--concurrency", type=int, help="originals in flight (default: render_workers)")
    warm.add_argument("--state", type=Path, help="checkpoint file (default: under the data folder's _/)")
    warm.add_argument("--config", type=Path, help=_CONFIG_HELP)
    args = parser.parse_args(argv)
    if args.command == "worker":
        return run_worker_command(args.config)
    if args.command == "warm":
        return run_warm_command(args)
    return run_serve(args.config, args.host, args.port)


def run_serve(config: Path | None = None, host: str | None = None, port: int | None = None) -> int:
    overrides = {name: value for name, value in (("host", host), ("port", port)) if value is not None}
    settings = _load(config, **overrides)
    if settings is None:
        return 2
    from workers.handler import in_process

    from .app import create_app

    try:
        check_listen(settings.host, settings.port)
        asyncio.run(preflight(settings))
        describe_config(settings, config_path(config)[0])
        # Without Redis there is no worker: the origin pre-renders its own uploads in process.
        app = create_app(settings, handler_factory=in_process)
    except (PresetError, UnsafeLibvips, StartupError) as exc:
        return _refused("image-origin", exc)
    from .server import run

    try:
        # SIGTERM/SIGINT: stop accepting, let renders in flight finish, then run cleanups. The server
        # owns the socket: deadlines on every phase of a connection, and the connection cap.
        run(app, settings.configs().connections, access_log=None)
    except StorageUnusable as exc:  # opened in the app's cleanup context, before serving
        return _refused("image-origin", exc)
    except OSError as exc:
        if exc.errno not in _LISTEN_ERRORS:
            raise
        return _refused("image-origin", StartupError(listen_error(settings.host, settings.port, exc)))
    return 0


def run_worker_command(config: Path | None = None) -> int:
    """Run the event worker until SIGTERM; 2 for a configuration it cannot run with."""
    settings = _load(config)
    if settings is None:
        return 2
    from workers.runner import WorkerError, run_worker

    try:
        asyncio.run(preflight(settings))
        describe_config(settings, config_path(config)[0])
        asyncio.run(run_worker(settings))
    except (WorkerError, PresetError, UnsafeLibvips, StartupError, StorageUnusable) as exc:
        return _refused("image-origin worker", exc)
    return 0


def _refused(prog: str, exc: Exception) -> int:
    """Say why the process cannot run, on one line; exit 3 for an unsafe libvips, 2 for a configuration."""
    if isinstance(exc, UnsafeLibvips):
        print(f"{prog}: refusing to start: {_one_line(exc)}", file=sys.stderr)
        return 3
    reason = "invalid presets: " if isinstance(exc, PresetError) else ""
    print(f"{prog}: {reason}{_one_line(exc)}", file=sys.stderr)
    return 2


def run_warm_command(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return 2
    from workers.warm import warm_command

    try:
        asyncio.run(preflight(settings))
    except StartupError as exc:
        return _refused("image-origin warm", exc)
    presets = [name.strip() for name in args.presets.split(",") if name.strip()] if args.presets else None
    return warm_command(
        settings.configs(), prefix=args.prefix, presets=presets, concurrency=args.concurrency, state=args.state
    )


def _load(config: Path | None, **overrides: object) -> Settings | None:
    """Settings (None after printing why they are unusable), and logging set up from them."""
    try:
        settings = load_settings(config, **overrides)
    except ConfigError as exc:
        print(f"image-origin: {_one_line(exc)}", file=sys.stderr)
        return None
    setup_logging(settings.log_level, settings.log_format)
    return settings


def _one_line(exc: Exception) -> str:
    """A message on one line (YAML and pydantic errors span several)."""
    return " ".join(str(exc).split())


def _version() -> str:
    try:
        return version("image-origin")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
