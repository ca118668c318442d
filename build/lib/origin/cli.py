"""`image-origin serve | worker | warm`: the commands users type (`python -m origin` / `python -m workers`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from aiohttp import web

from .logs import setup_logging
from .presets import PresetError
from .render import UnsafeLibvips
from .settings import ConfigError, Settings, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image-origin", description="A self-hosted image origin.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP origin")
    serve.add_argument("--host", help="listen address (default from settings: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default from settings: 8080)")
    serve.add_argument("--config", type=Path, help="settings YAML (default config/settings.yaml)")
    worker = commands.add_parser("worker", help="consume storage events: pre-render and invalidate")
    worker.add_argument("--config", type=Path, help="settings YAML (default config/settings.yaml)")
    warm = commands.add_parser("warm", help="pre-render every existing original (resumable)")
    warm.add_argument("--prefix", default="", help="only originals whose keys start with this")
    warm.add_argument("--presets", help="comma-separated presets to render (default: those marked warm)")
    warm.add_argument("--concurrency", type=int, help="originals in flight (default: render_workers)")
    warm.add_argument("--state", type=Path, help="checkpoint file (default: under the data folder's _/)")
    warm.add_argument("--config", type=Path, help="settings YAML (default config/settings.yaml)")
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
        # Without Redis there is no worker: the origin pre-renders its own uploads in process.
        app = create_app(settings, handler_factory=in_process)
    except (PresetError, UnsafeLibvips) as exc:
        return _refused("image-origin", exc)
    # SIGTERM/SIGINT: stop accepting, let renders in flight finish, then run cleanups.
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        shutdown_timeout=settings.render_timeout + 5,
        print=lambda message: logging.getLogger("origin").info(message.strip()),
    )
    return 0


def run_worker_command(config: Path | None = None) -> int:
    """Run the event worker until SIGTERM; 2 for a configuration it cannot run with."""
    settings = _load(config)
    if settings is None:
        return 2
    from workers.runner import WorkerError, run_worker

    try:
        asyncio.run(run_worker(settings))
    except (WorkerError, PresetError, UnsafeLibvips) as exc:
        return _refused("image-origin worker", exc)
    return 0


def _refused(prog: str, exc: Exception) -> int:
    """Say why the process cannot run; exit 3 for an unsafe libvips, 2 for a configuration."""
    if isinstance(exc, UnsafeLibvips):
        print(f"{prog}: refusing to start: {exc}", file=sys.stderr)
        return 3
    reason = "invalid presets: " if isinstance(exc, PresetError) else ""
    print(f"{prog}: {reason}{exc}", file=sys.stderr)
    return 2


def run_warm_command(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return 2
    from workers.warm import warm_command

    presets = [name.strip() for name in args.presets.split(",") if name.strip()] if args.presets else None
    return warm_command(settings, prefix=args.prefix, presets=presets, concurrency=args.concurrency, state=args.state)


def _load(config: Path | None, **overrides: object) -> Settings | None:
    """Settings (None after printing why they are unusable), and logging set up from them."""
    try:
        settings = load_settings(config, **overrides)
    except ConfigError as exc:
        print(f"image-origin: {exc}", file=sys.stderr)
        return None
    setup_logging(settings.log_level, settings.log_format)
    return settings


if __name__ == "__main__":
    sys.exit(main())
