"""Shared helpers of the benchmark sections: servers, clients, wrk, paired timing, RSS."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyvips

REPO = Path(__file__).resolve().parent.parent

WIDTH = 500
QUERY = f"w={WIDTH}"
CLASSES = ("L-jpg", "L-png", "M-jpg", "M-png", "S-jpg", "S-png")
WRK_SECONDS = 10
READY_TIMEOUT = 30.0
S3_REGION = "us-east-1"
MB = 1e6
REDIS_URL = "redis://127.0.0.1:6379/0"
HIT_RATIO_TARGET = 0.60  # cache hit over the bare aiohttp floor (render and cache sections)


# ---------------------------------------------------------------------------- helpers


def geomean(values: list[float]) -> float:
    values = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def class_of(name: str) -> str:
    return name[:5]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def floor_encode(image: pyvips.Image, source_fmt: str) -> bytes:
    """The exact encode call the origin makes for a LEGACY client with only `w` set."""
    if source_fmt == "jpg":
        return image.jpegsave_buffer(Q=75, interlace=False, optimize_coding=True, keep="none")
    return image.pngsave_buffer(compression=6, palette=False, Q=75, keep="none")


def fmt_ms(value: float) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# ---------------------------------------------------------------------------- processes


class Server:
    """A server subprocess on 127.0.0.1, its log in a file; stop() is idempotent."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path, cwd: Path) -> None:
        self.name, self.port, self.log = name, port, log
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, path: str = "/_/health") -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} did not become ready on port {self.port}:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log_file.close()


def origin_argv() -> list[str]:
    script = Path(sys.executable).parent / "image-origin"
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "origin"]


def start_origin(
    name: str,
    storage: Path | str,
    cache_bytes: int,
    tmp: Path,
    cwd: Path = REPO,
    command: list[str] | None = None,
    **extra_env: str,
) -> Server:
    """An origin on `storage` (a folder, or any storage URL such as `s3://...`); `extra_env` on top.
    `cwd`: the tree it runs in (its config/), with `PYTHONPATH` in `extra_env` for another tree's code
    and `command` to start it (by default this venv's `image-origin serve`)."""
    port = free_port()
    env = dict(os.environ)
    env.update(extra_env)
    env.update(
        IMAGE_ORIGIN_STORAGE_URL=f"file://{storage}" if isinstance(storage, Path) else storage,
        IMAGE_ORIGIN_CACHE_BYTES=str(cache_bytes),
        IMAGE_ORIGIN_METRICS_PUBLIC="true",  # render counts (health publishes none); loopback only
        IMAGE_ORIGIN_HOST="127.0.0.1",
    )
    argv = [*(command or origin_argv()), "--host", "127.0.0.1", "--port", str(port)]
    return Server(name, argv, env, port, tmp / f"{name}.log", cwd)


def start_bare(fetch: Fetcher, names: Iterable[str], bodies: Path, tmp: Path) -> Server:
    """The bare server (the floor an origin is measured against) over the bytes and types `fetch`
    answers for `names`, written to the new folder `bodies`: it serves exactly the origin's bytes."""
    bodies.mkdir()
    for name in names:
        (bodies / name).write_bytes(fetch(name))
    (bodies / "types.json").write_text(json.dumps(fetch.types))
    port = free_port()
    argv = [sys.executable, str(Path(__file__).with_name("bare_server.py")), str(bodies), str(port)]
    return Server("bare", argv, dict(os.environ), port, tmp / "bare.log", REPO)


class Client:
    """A keep-alive HTTP/1.1 client (stdlib) for sequential per-request latency."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str) -> tuple[int, http.client.HTTPResponse, bytes]:
        try:
            self.conn.request("GET", path)
            response = self.conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.conn.request("GET", path)
            response = self.conn.getresponse()
            body = response.read()
        return response.status, response, body

    def close(self) -> None:
        self.conn.close()


def proc_status_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssPoller(threading.Thread):
    """Samples VmRSS of `pid` every 50 ms until stopped; keeps the maximum (KiB)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kib = pid, 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            value = proc_status_kib(self.pid, "VmRSS")
            if value:
                self.peak_kib = max(self.peak_kib, value)
            self._halt.wait(0.05)

    def stop(self) -> int:
        self._halt.set()
        self.join(timeout=2)
        return self.peak_kib


def reset_hwm(pid: int) -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of our own child process (Linux >= 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


WRK_DONE = """done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%%d duration_us=%%d p50_us=%%d p99_us=%%d max_us=%%d " ..
    "connect=%%d read=%%d write=%%d status=%%d timeout=%%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""
"""The `done` hook every wrk script ends with: one BENCH line `parse_wrk` reads (%-escaped for the
scripts' own % formatting)."""

WRK_LUA = (
    """
local paths = {%s}
local n = #paths
local i = 0
request = function()
  i = i %% n + 1
  return wrk.format("GET", paths[i])
end
"""
    + WRK_DONE
)


def write_wrk_script(names: list[str], path: Path) -> Path:
    path.write_text(WRK_LUA % ", ".join(f'"/{name}?{QUERY}"' for name in names))
    return path


def run_wrk(wrk: str, port: int, script: Path, connections: int, seconds: int) -> dict[str, float]:
    cmd = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}/",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"^BENCH (.*)$", out.stdout, re.M)
    if not match:
        raise RuntimeError(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
    values = {k: float(v) for k, v in (item.split("=") for item in match.group(1).split())}
    values["rps"] = values["requests"] / (values["duration_us"] / 1e6)
    values["errors"] = sum(values[k] for k in ("connect", "read", "write", "status", "timeout"))
    return values


# ---------------------------------------------------------------------------- timing and fetching


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 76 - len(title)), flush=True)


def server_timing(header: str | None, name: str) -> float | None:
    match = re.search(rf"\b{name};dur=([0-9.]+)", header or "")
    return float(match.group(1)) if match else None


class Fetcher:
    """GET /<name>?w=500 on one server, checking status and X-Cache; keeps render times and sizes."""

    def __init__(self, port: int, expect_cache: str | None) -> None:
        self.client = Client(port)
        self.expect_cache = expect_cache
        self.renders: dict[str, list[float]] = {}
        self.sizes: dict[str, int] = {}
        self.types: dict[str, str] = {}
        self.bodies: dict[str, bytes] = {}

    def __call__(self, name: str) -> bytes:
        path = f"/{name}?{QUERY}"
        status, response, body = self.client.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path} -> {status}: {body[:200]!r}")
        cache = response.getheader("X-Cache")
        if self.expect_cache is not None and cache != self.expect_cache:
            raise RuntimeError(f"GET {path}: X-Cache {cache!r}, expected {self.expect_cache!r}")
        value = server_timing(response.getheader("Server-Timing"), "render")
        if value is not None:
            self.renders.setdefault(name, []).append(value)
        self.sizes[name] = len(body)
        self.types[name] = (response.getheader("Content-Type") or "application/octet-stream").split(";")[0]
        return body

    def render_ms(self, name: str) -> float:
        values = self.renders.get(name, [])[1:]  # the first is the warm-up
        return statistics.median(values) if values else float("nan")

    def close(self) -> None:
        self.client.close()


def paired(fns: list[Callable[[], object]], reps: int, budget: float) -> list[float]:
    """Median wall ms of each fn, run round-robin (one warm-up each), so background load hits all alike."""
    return [wall for wall, _ in paired_cpu(fns, reps, budget)]


def paired_cpu(fns: list[Callable[[], object]], reps: int, budget: float) -> list[tuple[float, float]]:
    """(median wall ms, median process CPU ms) of each fn, run round-robin after one warm-up each.

    Each round starts one place further along the list: over a full cycle of rounds every fn
    runs first once and follows every other fn once, so whatever one call leaves behind (caches,
    clock speed, the previous server's garbage) falls on all alike, and no fn ever runs twice in
    a row. The time budget is checked only at the end of a full cycle."""
    for fn in fns:
        fn()
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    runs = list(zip(fns, walls, cpus, strict=True))
    start = time.perf_counter()
    for index in range(-(-reps // len(runs)) * len(runs)):  # whole cycles: reps rounded up
        shift = index % len(runs)
        for fn, wall, cpu in runs[shift:] + runs[:shift]:
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - t0)
        if shift == len(runs) - 1 and time.perf_counter() - start > budget:
            break
    return [(statistics.median(w) * 1000, statistics.median(c) * 1000) for w, c in zip(walls, cpus, strict=True)]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def health_renders(port: int) -> int:
    """The process's render count, from its metrics (start_origin serves them: metrics_public)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/_/metrics")
        return renders_total(conn.getresponse().read().decode())
    finally:
        conn.close()


def renders_total(metrics: str) -> int:
    """`image_origin_renders_total` from a Prometheus text exposition."""
    found = re.search(r"^image_origin_renders_total (\S+)$", metrics, re.M)
    if found is None:
        raise ValueError("no image_origin_renders_total in the metrics")
    return int(float(found.group(1)))


def origin_settings():  # -> origin.settings.Settings
    """The settings the servers start with (they run in the repo root): YAML, then the environment."""
    from origin.settings import DEFAULT_CONFIG, Settings, load_settings

    explicit = os.environ.get("IMAGE_ORIGIN_CONFIG")
    path = REPO / (explicit or DEFAULT_CONFIG)
    return load_settings(path) if explicit or path.exists() else Settings()


def aws_test_env() -> dict[str, str | None]:
    """Dummy credentials and a region, no instance metadata or profile files (as tests/s3.py):
    nothing the bench or its origin does with S3 looks beyond this machine. None = unset."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": S3_REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_PROFILE": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_ENDPOINT_URL": None,
        "AWS_ENDPOINT_URL_S3": None,
    }


@contextlib.contextmanager
def patched_environ(changes: dict[str, str | None]) -> Iterator[None]:
    """Set (or unset, for None) environment variables for the block; the old values come back after."""
    saved = {name: os.environ.get(name) for name in changes}

    def apply(values: dict[str, str | None]) -> None:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    apply(changes)
    try:
        yield
    finally:
        apply(saved)


def content_type(name: str) -> str:
    return "image/jpeg" if name.endswith(".jpg") else "image/png"


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a child process so far (/proc/PID/stat), NaN if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


@dataclass(frozen=True)
class Run:
    """What every section gets: the options, the corpus (names in class order, bytes in memory), a
    temp folder removed after the run, and the summary its rows are appended to
    (metric, value, target, PASS/MISS/SKIP or "-")."""

    args: argparse.Namespace
    names: list[str]
    sources: dict[str, bytes]
    corpus: Path
    tmp: Path
    summary: list[tuple[str, str, str, str]]
