"""The worker as an operator runs it (issue 8, item 13): it says what it reads, retries an SQS
endpoint it cannot reach with a capped, logged backoff, and the Procfile's two processes both
stay up on the embedded defaults (a Procfile runner stops everything when one exits)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from tests.live import free_port
from tests.tcp_proxy import TcpProxy
from tests.workers.test_sources import RecordingHandler, eventually, new_queue, queued, sqs, sqs_settings  # noqa: F401 - fixture
from workers.sources.sqs import SqsSource

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_ORIGIN_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


async def test_sqs_unreachable_is_retried_with_backoff_then_read(s3_url, s3_endpoint, sqs, caplog):  # noqa: F811
    """Nothing listens at the endpoint: warnings with doubling pauses, no crash; once it answers, events flow."""
    caplog.set_level(logging.INFO, logger="workers.sqs")
    queue, _ = new_queue(sqs)
    port = free_port()
    handler = RecordingHandler()  # never called: the one message is unreadable
    source = SqsSource(sqs_settings(s3_url, f"http://127.0.0.1:{port}", queue).configs().worker, handler)
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    pauses: list[float] = []

    def warned() -> bool:
        pauses[:] = [
            float(m.group(1))
            for r in caplog.records
            if (
                m := re.search(
                    r"cannot reach SQS at http://127\.0\.0\.1:\d+ \(.+\); trying again in (\S+) s", r.message
                )
            )
        ]
        return len(pauses) >= 2

    await eventually(warned, timeout=20)
    assert pauses[:2] == [1.0, 2.0] and not task.done()
    host, moto_port = s3_endpoint.removeprefix("http://").split(":")
    proxy = await TcpProxy(host, int(moto_port), port=port).start()  # the endpoint comes up
    try:
        await eventually(lambda: any(f"reading {queue}" in r.message for r in caplog.records), timeout=20)
        sqs.send_message(QueueUrl=queue, MessageBody="{not json")
        await eventually(lambda: queued(sqs, queue) == 0, timeout=20)  # received (and, unreadable, dropped)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await proxy.close()


def test_worker_cli_logs_its_sources_and_survives_an_unreachable_queue(tmp_path: Path, s3_endpoint):
    (tmp_path / "data").mkdir()
    port = free_port()
    queue = f"http://127.0.0.1:{port}/123456789012/events"
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers"],
        cwd=tmp_path,
        env=_env(IMAGE_ORIGIN_SQS_QUEUE_URL=queue, IMAGE_ORIGIN_SQS_ENDPOINT_URL=f"http://127.0.0.1:{port}"),
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = _collect(proc)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not any("trying again in 2 s" in line for line in lines):
        time.sleep(0.1)
    assert proc.poll() is None, "the worker must keep trying, not exit"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    lines.thread.join(10)
    stderr = "".join(lines)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert f"worker: reading SQS queue {queue} at http://127.0.0.1:{port}" in stderr
    assert "originals in file://./data, pre-rendered variants to file://./data/_/derived" in stderr
    assert "cannot reach SQS" in stderr and "trying again in 1 s" in stderr


class _Lines(list[str]):
    thread: threading.Thread


def _collect(proc: subprocess.Popen[str]) -> _Lines:
    """The process's stderr lines so far, filled in by a thread as they come (`.thread` ends at EOF)."""
    lines = _Lines()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)

    lines.thread = threading.Thread(target=read, daemon=True)
    lines.thread.start()
    return lines


def _procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def test_procfile_runs_on_the_embedded_defaults(tmp_path: Path):
    """Each Procfile line, run as a Procfile runner does (sh -c, $PORT set, from the project's files):
    both processes stay up, the web one answers /_/health, and both stop cleanly on SIGTERM."""
    entries = _procfile()
    assert set(entries) == {"web", "worker"}
    (tmp_path / "config").symlink_to(ROOT / "config")  # the project folder, without writing ./data into it
    port = free_port()
    procs = {
        name: subprocess.Popen(
            ["sh", "-c", f"exec {command}"],
            cwd=tmp_path,
            env=_env(PORT=str(port)),
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, command in entries.items()
    }
    lines = {name: _collect(proc) for name, proc in procs.items()}
    try:

        async def healthy() -> int:
            async with aiohttp.ClientSession() as session:
                for _ in range(300):
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/_/health") as resp:
                            return resp.status
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
            return 0

        assert asyncio.run(healthy()) == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("idle until SIGTERM" in line for line in lines["worker"]):
            time.sleep(0.1)
        time.sleep(1)
        assert {name: proc.poll() for name, proc in procs.items()} == {"web": None, "worker": None}
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for name, proc in procs.items():
            proc.wait(timeout=30)
            lines[name].thread.join(10)
    outputs = {name: "".join(collected) for name, collected in lines.items()}
    assert {name: proc.returncode for name, proc in procs.items()} == {"web": 0, "worker": 0}, outputs
    assert "web process handles its own uploads in process; idle until SIGTERM" in outputs["worker"]
    assert "Traceback" not in outputs["web"] + outputs["worker"]


@pytest.mark.parametrize("command", ["web", "worker"])
def test_procfile_commands_parse(command):
    assert shlex.split(_procfile()[command])[0] == "image-origin"
