"""A real `image-origin serve` process on a free port, for tests that need a listening server
(a browser, nginx, schemathesis): started from the repository root (so config/presets.yaml
is the one in use), waited for on /_/health, stopped with SIGTERM at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "live-test-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Live:
    url: str
    data: Path
    log: Path
    token: str = TOKEN

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextlib.contextmanager
def live_origin(tmp: Path, **settings: str) -> Iterator[Live]:
    """Serve a fresh data folder under `tmp`; `settings` become IMAGE_ORIGIN_* variables."""
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_ORIGIN_")}
    env.update(
        {
            "IMAGE_ORIGIN_STORAGE_URL": f"file://{data}",
            "IMAGE_ORIGIN_PORT": str(port),
            "IMAGE_ORIGIN_HOST": "127.0.0.1",
            "IMAGE_ORIGIN_TOKENS": TOKEN,
            "IMAGE_ORIGIN_RENDER_WORKERS": "2",
        }
    )
    env.update({f"IMAGE_ORIGIN_{name.upper()}": value for name, value in settings.items()})
    log = tmp / f"origin-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "origin"], cwd=ROOT, env=env, stdout=out, stderr=out)
    live = Live(url=f"http://127.0.0.1:{port}", data=data, log=log)
    try:
        _wait(live, process)
        yield live
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_healthy(
    base: str, process: subprocess.Popen[Any] | None = None, seconds: float = 30.0, log: Callable[[], str] = lambda: ""
) -> None:
    """Until `base`/_/health answers 200 (a server this test started); an AssertionError
    ending with `log()` when `process` exits first or `seconds` pass."""
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"the origin exited with {process.returncode}\n{log()}")
            try:
                async with session.get(f"{base}/_/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"the origin did not answer within {seconds} s\n{log()}")


def _wait(live: Live, process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the origin exited with {process.returncode}: {live.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(live.url + "/_/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the origin did not answer within {seconds} s: {live.log.read_text()[-2000:]}")
