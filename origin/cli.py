"""`image-origin serve`: the command users type (worker and warm arrive with the worker)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from .presets import PresetError
from .render import UnsafeLibvips
from .settings import ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image-origin", description="A self-hosted image origin.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP origin")
    serve.add_argument("--host", help="listen address (default from settings: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default from settings: 8080)")
    serve.add_argument("--config", type=Path, help="settings YAML (default config/settings.yaml)")
    args = parser.parse_args(argv)
    return run_serve(args.config, args.host, args.port)


def run_serve(config: Path | None = None, host: str | None = None, port: int | None = None) -> int:
    overrides = {name: value for name, value in (("host", host), ("port", port)) if value is not None}
    try:
        settings = load_settings(config, **overrides)
    except ConfigError as exc:
        print(f"image-origin: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # libvips' INFO chatter is per render
    from .app import create_app

    try:
        app = create_app(settings)
    except PresetError as exc:
        print(f"image-origin: invalid presets: {exc}", file=sys.stderr)
        return 2
    except UnsafeLibvips as exc:
        print(f"image-origin: refusing to start: {exc}", file=sys.stderr)
        return 3
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


if __name__ == "__main__":
    sys.exit(main())
