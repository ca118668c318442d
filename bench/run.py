"""Benchmark: the origin's w=500 render path against libvips' and aiohttp's floors.

    .venv/bin/python bench/run.py [CORPUS_DIR]      (default: ../shared/corpus from the repo root)
    .venv/bin/python bench/run.py --only upload     (the upload section alone, ~30 s; --skip-upload drops it)
    .venv/bin/python bench/run.py --only cache      (cache hits and coalescing alone, ~45 s; --skip-cache drops it)
    .venv/bin/python bench/run.py --only worker     (the worker section alone, ~90 s; --skip-worker drops it)

One run prints, for every corpus image and per class (L/M/S x jpg/png):
  a  floor: pyvips thumbnail_buffer(500) + the origin's encode call, in-process
  b  origin cold miss over HTTP on loopback, variant cache disabled
  c  origin cache hit over HTTP
  d  a bare aiohttp app returning the same bytes from memory (the HTTP floor)
then wrk throughput (cold c=1 and c=8 over the corpus mix, hit vs bare), the server's
peak RSS during the c=8 cold run, a shrink-on-load check on baseline JPEGs, an AVIF
effort table, cache-hit throughput (memory hit and Redis hit vs bare, wrk c=8) and
coalescing of one burst of 100 cold requests (one process; two processes sharing Redis),
upload throughput (management API POST, local folder and S3 on an in-process moto server,
each against its raw write), the worker (S3 upload -> warm variants in derived storage through
an SQS bucket notification and a `python -m workers` subprocess, moto on loopback; the
`image-origin warm` backfill rate against raw pyvips), and a PASS/MISS summary. Every loop
is bounded in count and in time. Stdlib + pyvips + aiohttp (+ the wrk binary); the cache
section also uses redis-py and a Redis server (only keys under a per-run prefix, deleted at
the end); the upload and worker sections moto, boto3 and aiobotocore (test extras). Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import http.client
import json
import logging
import math
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import pyvips  # noqa: E402

from origin.formats import Accepts  # noqa: E402
from origin.params import parse_query  # noqa: E402
from origin.render import RenderConfig, RenderGuard, harden, render  # noqa: E402
from origin.render.validate import validate  # noqa: E402

WIDTH = 500
QUERY = f"w={WIDTH}"
CLASSES = ("L-jpg", "L-png", "M-jpg", "M-png", "S-jpg", "S-png")

# Bounds: repetitions and seconds per measured item (each loop stops at whichever comes first).
COLD_REPS, COLD_BUDGET = 5, 6.0
HIT_REPS, HIT_BUDGET = 60, 1.5
SHRINK_REPS, SHRINK_BUDGET = 5, 5.0
AVIF_REPS, AVIF_BUDGET = 3, 8.0
AVIF_EFFORTS = (0, 1, 2, 3, 4)
AVIF_IMAGES = ("L-jpg-bridge.jpg", "M-jpg-cups.jpg", "M-png-gulp-alpha.png", "S-png-astronaut.png")
WRK_SECONDS = 10
READY_TIMEOUT = 30.0
# Uploads: corpus passes per (backend, concurrency): at least MIN, then stop once past the budget (s), at most MAX.
UPLOAD_CONCURRENCY = (1, 4)
UPLOAD_MIN_PASSES, UPLOAD_MAX_PASSES, UPLOAD_BUDGET = 2, 3, 5.0
UPLOAD_FOLDER = "bench-upload"
S3_REGION = "us-east-1"
S3_PREFIX = "origin/bench"
MB = 1e6

# Targets.
HIT_RATIO_TARGET = 0.60
RSS_TARGET_MIB = 300.0
AVIF_TIME_TARGET = 3.0

# Cache section: three hot variants rotated by wrk (memory hit, Redis hit, bare floor), then one
# burst of cold requests for one variant of a medium image (coalescing).
CACHE_IMAGES = ("M-jpg-cups.jpg", "M-jpg-path.jpg", "S-jpg-rocket.jpg")
COALESCE_IMAGE = "M-jpg-picos.jpg"
# wrk: each server CACHE_WRK_ROUNDS x CACHE_WRK_SECONDS, the servers taking turns (bare, memory, redis,
# then the reverse), so load that comes and goes on the machine reaches every server alike.
CACHE_WRK_SECONDS, CACHE_WRK_ROUNDS, CACHE_WRK_CONNECTIONS = 4, 2, 8
CACHE_BYTES = 256 * 1024 * 1024
BURST = 100
# Three rounds of (one cold request alone, then a burst of cold requests), each on its own variant
# of the same image at w=500: the cost differs only by the JPEG quality (None = the default, 75).
REFERENCE_QUALITIES = (74, 76, 77)
BURST_QUALITIES = (None, 73, 78)
WARM_LIMIT = 10  # requests per variant at most, waiting for its Redis admission
REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_RATIO_TARGET = 0.35
COALESCE_P99_TARGET = 1.3


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

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/_/health")
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


def start_origin(name: str, storage: Path | str, cache_bytes: int, tmp: Path, **extra_env: str) -> Server:
    """An origin on `storage` (a folder, or any storage URL such as `s3://...`); `extra_env` on top."""
    port = free_port()
    env = dict(os.environ)
    env.update(extra_env)
    env.update(
        IMAGE_ORIGIN_STORAGE_URL=f"file://{storage}" if isinstance(storage, Path) else storage,
        IMAGE_ORIGIN_CACHE_BYTES=str(cache_bytes),
        IMAGE_ORIGIN_HOST="127.0.0.1",
    )
    argv = [*origin_argv(), "--host", "127.0.0.1", "--port", str(port)]
    return Server(name, argv, env, port, tmp / f"{name}.log", REPO)


def start_bare(bodies: Path, tmp: Path) -> Server:
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


WRK_LUA = """
local paths = {%s}
local n = #paths
local i = 0
request = function()
  i = i %% n + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%%d duration_us=%%d p50_us=%%d p99_us=%%d max_us=%%d " ..
    "connect=%%d read=%%d write=%%d status=%%d timeout=%%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


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


# ---------------------------------------------------------------------------- sections


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 76 - len(title)), flush=True)


def floor_work(data: bytes, name: str) -> Callable[[], bytes]:
    fmt = "jpg" if name.endswith(".jpg") else "png"
    return lambda: floor_encode(pyvips.Image.thumbnail_buffer(data, WIDTH, height=10_000_000), fmt)


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
    """(median wall ms, median process CPU ms) of each fn, run round-robin after one warm-up each."""
    for fn in fns:
        fn()
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    for _ in range(reps):
        for fn, wall, cpu in zip(fns, walls, cpus, strict=True):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return [(statistics.median(w) * 1000, statistics.median(c) * 1000) for w, c in zip(walls, cpus, strict=True)]


def print_latency_tables(names, a, b, b_render, c, d, sizes) -> dict[str, dict[str, float]]:
    print(
        f"{'image':28} {'a floor':>8} {'b cold':>8} {'b.render':>8} {'c hit':>7} {'d bare':>7}"
        f" {'b/a':>6} {'c/d':>6} {'out KB':>7}"
    )
    for name in names:
        print(
            f"{name:28} {fmt_ms(a[name]):>8} {fmt_ms(b[name]):>8} {fmt_ms(b_render[name]):>8}"
            f" {c[name]:>7.2f} {d[name]:>7.2f} {b[name] / a[name]:>6.2f} {c[name] / d[name]:>6.2f}"
            f" {sizes[name] / 1024:>7.1f}"
        )
    print("\nper class (median of per-image medians; ratios = median of per-image ratios):")
    print(f"{'class':6} {'n':>2} {'a floor':>8} {'b cold':>8} {'c hit':>7} {'d bare':>7} {'b/a':>6} {'c/d':>6}")
    per_class = {}
    for cls in CLASSES:
        members = [n for n in names if class_of(n) == cls]
        if not members:
            continue
        row = {
            "a": statistics.median(a[n] for n in members),
            "b": statistics.median(b[n] for n in members),
            "c": statistics.median(c[n] for n in members),
            "d": statistics.median(d[n] for n in members),
            "b/a": statistics.median(b[n] / a[n] for n in members),
            "c/d": statistics.median(c[n] / d[n] for n in members),
        }
        per_class[cls] = row
        print(
            f"{cls:6} {len(members):>2} {fmt_ms(row['a']):>8} {fmt_ms(row['b']):>8} {row['c']:>7.2f}"
            f" {row['d']:>7.2f} {row['b/a']:>6.2f} {row['c/d']:>6.2f}"
        )
    return per_class


def measure_shrink(sources: dict[str, bytes], tmp: Path) -> list[dict[str, float]]:
    spec = parse_query([("w", str(WIDTH))])
    config = RenderConfig()
    folder = tmp / "baseline"
    folder.mkdir()
    rows = []
    for name, data in sources.items():
        if not name.startswith("L-jpg"):
            continue
        baseline_path = folder / name
        pyvips.Image.new_from_buffer(data, "").jpegsave(str(baseline_path), Q=90, interlace=False)
        baseline = baseline_path.read_bytes()

        def naive(data: bytes = baseline) -> bytes:
            return floor_encode(pyvips.Image.thumbnail_buffer(data, WIDTH, height=10_000_000), "jpg")

        def origin(data: bytes = baseline) -> bytes:
            return render(data, spec, Accepts.LEGACY, config, None, RenderGuard()).body

        def origin_progressive(data: bytes = data) -> bytes:
            return render(data, spec, Accepts.LEGACY, config, None, RenderGuard()).body

        def full_decode(data: bytes = baseline) -> bytes:
            image = pyvips.Image.new_from_buffer(data, "", access="sequential")
            return floor_encode(image.resize(WIDTH / image.width), "jpg")

        naive_ms, origin_ms, full_ms, prog_ms = paired(
            [naive, origin, full_decode, origin_progressive], SHRINK_REPS, SHRINK_BUDGET
        )
        rows.append({"name": name, "naive": naive_ms, "origin": origin_ms, "full": full_ms, "prog": prog_ms})
    return rows


def measure_avif(sources: dict[str, bytes]) -> list[dict[str, object]]:
    """WebP (effort 4) and AVIF at each effort, Q75, on 500 px images already in memory."""
    chosen = [n for n in AVIF_IMAGES if n in sources] or list(sources)[:4]
    rows = []
    for name in chosen:
        image = pyvips.Image.thumbnail_buffer(sources[name], WIDTH, height=10_000_000).copy_memory()

        def webp(image: pyvips.Image = image) -> bytes:
            return image.webpsave_buffer(Q=75, effort=4, keep="none")

        def avif(effort: int, image: pyvips.Image = image) -> Callable[[], bytes]:
            return lambda: image.heifsave_buffer(Q=75, compression="av1", effort=effort, bitdepth=8, keep="none")

        encoders = [webp] + [avif(e) for e in AVIF_EFFORTS]
        timings = paired_cpu(encoders, AVIF_REPS, AVIF_BUDGET)
        sizes = [len(fn()) for fn in encoders]
        rows.append(
            {
                "name": name,
                "webp": (*timings[0], sizes[0]),
                "avif": {e: (*timings[i + 1], sizes[i + 1]) for i, e in enumerate(AVIF_EFFORTS)},
            }
        )
    return rows


def bench_render(
    args: argparse.Namespace,
    names: list[str],
    sources: dict[str, bytes],
    corpus: Path,
    tmp: Path,
    summary: list[tuple[str, str, str, str]],
) -> None:
    """Sections a-d, wrk, RSS, shrink-on-load and AVIF; appends their summary rows."""
    servers: list[Server] = []
    try:
        storage = tmp / "storage"
        storage.mkdir()
        for name in names:  # copies: the origin refuses symlinks that leave its root
            shutil.copyfile(corpus / name, storage / name)

        cold = start_origin("origin-cold", storage, 0, tmp)
        servers.append(cold)
        hit = start_origin("origin-hit", storage, 256 * 1024 * 1024, tmp)
        servers.append(hit)
        cold.wait_ready()
        hit.wait_ready()
        idle_rss = (proc_status_kib(cold.pid, "VmRSS") or 0) / 1024

        # Hit bodies first: the bare server serves exactly those bytes.
        bodies = tmp / "bodies"
        bodies.mkdir()
        hit_get = Fetcher(hit.port, None)
        for name in names:
            (bodies / name).write_bytes(hit_get(name))
        (bodies / "types.json").write_text(json.dumps(hit_get.types))
        bare = start_bare(bodies, tmp)
        servers.append(bare)
        bare.wait_ready()
        hit_get.expect_cache = "memory"
        cold_get = Fetcher(cold.port, "miss")
        bare_get = Fetcher(bare.port, None)

        section("a) floor in-process | b) origin cold miss (cache off) | c) hit | d) bare aiohttp")
        print("a and b are timed alternately per image (so are c and d): background load hits both alike")
        a, b, c, d = {}, {}, {}, {}
        for name in names:
            a[name], b[name] = paired(
                [floor_work(sources[name], name), lambda n=name: cold_get(n)], COLD_REPS, COLD_BUDGET
            )
            c[name], d[name] = paired([lambda n=name: hit_get(n), lambda n=name: bare_get(n)], HIT_REPS, HIT_BUDGET)
        b_render = {n: cold_get.render_ms(n) for n in names}
        sizes = cold_get.sizes
        for fetcher in (cold_get, hit_get, bare_get):
            fetcher.close()
        mismatched = [n for n in names if bare_get.sizes[n] != sizes[n]]
        if mismatched:
            print(f"note: cold and hit bodies differ in size for {mismatched}")
        per_class = print_latency_tables(names, a, b, b_render, c, d, sizes)
        print(
            "b.render = the origin's own Server-Timing render (pool queue + render + encode);"
            " b - b.render = HTTP + storage read + keys."
        )

        section(f"wrk throughput ({args.wrk_seconds} s each, -t1, corpus mix, w={WIDTH})")
        script = write_wrk_script(names, tmp / "rotate.lua")
        cold_c1 = run_wrk(args.wrk, cold.port, script, 1, args.wrk_seconds)
        hwm_reset = reset_hwm(cold.pid)
        poller = RssPoller(cold.pid)
        poller.start()
        try:
            cold_c8 = run_wrk(args.wrk, cold.port, script, 8, args.wrk_seconds)
        finally:
            sampled_kib = poller.stop()
        hwm_kib = proc_status_kib(cold.pid, "VmHWM") or 0
        peak_mib = (hwm_kib if hwm_reset else max(hwm_kib, sampled_kib)) / 1024
        hit_c8 = run_wrk(args.wrk, hit.port, script, 8, args.wrk_seconds)
        bare_c8 = run_wrk(args.wrk, bare.port, script, 8, args.wrk_seconds)
        print(f"{'run':22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'requests':>9} {'errors':>7}")
        for label, r in (
            ("cold c=1", cold_c1),
            ("cold c=8", cold_c8),
            ("hit  c=8 (c)", hit_c8),
            ("bare c=8 (d)", bare_c8),
        ):
            print(
                f"{label:22} {r['rps']:>9.1f} {r['p50_us'] / 1000:>8.1f} {r['p99_us'] / 1000:>8.1f}"
                f" {r['max_us'] / 1000:>8.1f} {int(r['requests']):>9} {int(r['errors']):>7}"
            )
        hit_ratio = hit_c8["rps"] / bare_c8["rps"]
        seq_cold_total = sum(a[n] for n in names)
        print(
            f"hit/bare req/s = {hit_ratio:.2f}; cold c=8 vs c=1 = {cold_c8['rps'] / cold_c1['rps']:.2f}x; "
            f"one corpus pass at the floor (sum of a) = {seq_cold_total:.0f} ms = {1000 * len(names) / seq_cold_total:.1f} req/s serial"
        )
        print(
            f"cold server RSS: idle {idle_rss:.0f} MiB; peak during c=8 "
            f"{'VmHWM (reset before run)' if hwm_reset else 'max(VmHWM, sampled VmRSS)'} = {peak_mib:.0f} MiB"
            f" (sampled VmRSS max {sampled_kib / 1024:.0f} MiB); after run VmRSS "
            f"{(proc_status_kib(cold.pid, 'VmRSS') or 0) / 1024:.0f} MiB"
        )

        section("shrink-on-load on large BASELINE JPEGs (re-saved Q90, interlace=False), in-process")
        shrink = measure_shrink(sources, tmp)
        print(
            f"{'image':24} {'naive thumb':>11} {'origin':>8} {'orig/naive':>10} {'no-shrink':>9} {'origin(prog src)':>16}"
        )
        for row in shrink:
            print(
                f"{row['name']:24} {fmt_ms(row['naive']):>11} {fmt_ms(row['origin']):>8}"
                f" {row['origin'] / row['naive']:>10.2f} {fmt_ms(row['full']):>9} {fmt_ms(row['prog']):>16}"
            )
        shrink_ratio = geomean([r["origin"] / r["naive"] for r in shrink]) if shrink else float("nan")
        print(
            f"geomean origin/naive = {shrink_ratio:.2f}; no-shrink/origin = "
            f"{geomean([r['full'] / r['origin'] for r in shrink]):.1f}x; progressive/baseline (origin) = "
            f"{geomean([r['prog'] / r['origin'] for r in shrink]):.1f}x"
        )

        section(f"AVIF effort vs WebP (effort 4), Q75, {WIDTH} px, encode only, in-process")
        avif = measure_avif(sources)
        print("per effort: wall-time / CPU-time / size, each as a multiple of WebP's; WebP columns absolute")
        head = "".join(f" {'e' + str(e) + ' wall/cpu/size':>17}" for e in AVIF_EFFORTS)
        print(f"{'image':22} {'webp ms':>7} {'cpu ms':>6} {'KB':>5}{head}")
        for row in avif:
            wall0, cpu0, size0 = row["webp"]
            cells = "".join(
                f" {w / wall0:>5.1f}/{c / cpu0:>4.1f}/{z / size0:<5.2f}" for w, c, z in row["avif"].values()
            )
            print(f"{row['name']:22} {fmt_ms(wall0):>7} {fmt_ms(cpu0):>6} {size0 / 1024:>5.1f}{cells}")
        avif_time = {e: geomean([r["avif"][e][0] / r["webp"][0] for r in avif]) for e in AVIF_EFFORTS}
        avif_cpu = {e: geomean([r["avif"][e][1] / r["webp"][1] for r in avif]) for e in AVIF_EFFORTS}
        avif_size = {e: geomean([r["avif"][e][2] / r["webp"][2] for r in avif]) for e in AVIF_EFFORTS}
        avif_ms = {e: statistics.median(r["avif"][e][0] for r in avif) for e in AVIF_EFFORTS}
        print("geomean over images (wall x, cpu x, size x, median wall ms):")
        for e in AVIF_EFFORTS:
            print(
                f"  e{e}: {avif_time[e]:.1f}x wall, {avif_cpu[e]:.1f}x cpu, {avif_size[e]:.2f}x size,"
                f" {fmt_ms(avif_ms[e])} ms"
            )
        print(
            "wall = latency of one encode on an idle box (aom may use several threads);"
            " cpu = cost per image when all cores are busy (throughput)."
        )
        within = [e for e in AVIF_EFFORTS if avif_time[e] <= AVIF_TIME_TARGET]
        best = max(within) if within else None
        within_cpu = [e for e in AVIF_EFFORTS if avif_cpu[e] <= AVIF_TIME_TARGET]
        best_cpu = max(within_cpu) if within_cpu else None
        default_effort = RenderConfig().avif_effort

        # ------------------------------------------------------------------ summary
        for cls, row in per_class.items():
            summary.append((f"cold miss b/a {cls}", f"{row['b/a']:.2f}", "info", "-"))
        summary.append(
            ("hit c/d sequential (median)", f"{statistics.median(c[n] / d[n] for n in names):.2f}", "info", "-")
        )
        summary.append(("cold c=1 req/s, p99 ms", f"{cold_c1['rps']:.1f}, {cold_c1['p99_us'] / 1000:.0f}", "info", "-"))
        summary.append(("cold c=8 req/s, p99 ms", f"{cold_c8['rps']:.1f}, {cold_c8['p99_us'] / 1000:.0f}", "info", "-"))
        summary.append(("hit c=8 req/s c vs bare d", f"{hit_c8['rps']:.0f} vs {bare_c8['rps']:.0f}", "info", "-"))
        summary.append(
            (
                "hit/bare wrk req/s (c/d)",
                f"{hit_ratio:.2f}",
                f">= {HIT_RATIO_TARGET:.2f}",
                verdict(hit_ratio >= HIT_RATIO_TARGET),
            )
        )
        summary.append(
            (
                "peak RSS cold c=8 (MiB)",
                f"{peak_mib:.0f}",
                f"<= {RSS_TARGET_MIB:.0f}",
                verdict(peak_mib <= RSS_TARGET_MIB),
            )
        )
        summary.append(("baseline L-jpg origin/naive", f"{shrink_ratio:.2f}", "< 1.00", verdict(shrink_ratio < 1.0)))
        summary.append(
            (
                f"AVIF default e{default_effort} wall/WebP",
                f"{avif_time[default_effort]:.1f}",
                f"<= {AVIF_TIME_TARGET:.1f}",
                verdict(avif_time[default_effort] <= AVIF_TIME_TARGET),
            )
        )
        summary.append(
            (
                f"AVIF default e{default_effort} CPU/WebP",
                f"{avif_cpu[default_effort]:.1f}",
                f"<= {AVIF_TIME_TARGET:.1f}",
                verdict(avif_cpu[default_effort] <= AVIF_TIME_TARGET),
            )
        )
        summary.append(
            (
                "AVIF highest effort <= 3x (wall, cpu)",
                f"{'-' if best is None else f'e{best}'}, {'-' if best_cpu is None else f'e{best_cpu}'}",
                "info",
                "-",
            )
        )
        errors = sum(int(r["errors"]) for r in (cold_c1, cold_c8, hit_c8, bare_c8))
        summary.append(("wrk errors (all runs)", str(errors), "0", verdict(errors == 0)))
    finally:
        for server in reversed(servers):
            server.stop()


# ---------------------------------------------------------------------------- cache hits and coalescing


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def health_renders(port: int) -> int:
    """The process's render count from /_/health."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/_/health")
        return int(json.loads(conn.getresponse().read())["renders"])
    finally:
        conn.close()


def origin_settings():  # -> origin.settings.Settings
    """The settings the servers start with (they run in the repo root): YAML, then the environment."""
    from origin.settings import DEFAULT_CONFIG, Settings, load_settings

    explicit = os.environ.get("IMAGE_ORIGIN_CONFIG")
    path = REPO / (explicit or DEFAULT_CONFIG)
    return load_settings(path) if explicit or path.exists() else Settings()


def warm_redis(port: int, names: list[str], rclient, prefix: str, lease_ms: float) -> dict[str, int]:
    """GET each variant until the origin answers X-Cache: redis AND Redis keeps it for longer than a
    render lease, i.e. it was admitted as hot rather than only published for waiting replicas.
    Returns the requests each one took."""
    client = Client(port)
    taken: dict[str, int] = {}
    try:
        for name in names:
            path = f"/{name}?{QUERY}"
            cache, ttl = None, -2
            for count in range(1, WARM_LIMIT + 1):
                status, response, body = client.get(path)
                if status != 200:
                    raise RuntimeError(f"GET {path} -> {status}: {body[:200]!r}")
                cache = response.getheader("X-Cache")
                etag = (response.getheader("ETag") or "").strip('"')
                time.sleep(0.02)  # the admission is written by a background task
                ttl = rclient.pttl(f"{prefix}v:{etag}")
                if cache == "redis" and ttl > lease_ms:
                    taken[name] = count
                    break
            else:
                raise RuntimeError(
                    f"{name}: not admitted to Redis after {WARM_LIMIT} requests (last X-Cache {cache!r}, PTTL {ttl} ms)"
                )
    finally:
        client.close()
    return taken


def delete_prefix(rclient, prefix: str) -> int:
    """Delete the keys under `prefix` only (SCAN MATCH + DEL, never FLUSHDB); returns how many."""
    pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"
    deleted, batch = 0, []
    for key in rclient.scan_iter(match=pattern, count=500):
        batch.append(key)
        if len(batch) >= 500:
            deleted += rclient.delete(*batch)
            batch = []
    if batch:
        deleted += rclient.delete(*batch)
    return deleted


async def coalesce_burst(ports: list[int], name: str, warm_name: str) -> dict[str, object]:
    """On fresh servers, len(BURST_QUALITIES) times: one cold request for a variant of `name` alone
    (its `q` from REFERENCE_QUALITIES), then BURST concurrent cold requests for another variant of
    the same cost, spread over `ports` round-robin; renders counted from /_/health before and
    after each burst. Alternating lone request and burst lets background load reach both alike."""
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def get(port: int, path: str) -> tuple[int, str | None, float | None, bytes, float]:
            t0 = time.perf_counter()
            async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                body = await response.read()
                elapsed = time.perf_counter() - t0
                return (
                    response.status,
                    response.headers.get("X-Cache"),
                    server_timing(response.headers.get("Server-Timing"), "render"),
                    body,
                    elapsed,
                )

        async def renders() -> int:
            answers = await asyncio.gather(*(get(port, "/_/health") for port in ports))
            return sum(json.loads(answer[3])["renders"] for answer in answers)

        # Open every connection the bursts use first (they measure no TCP handshakes), and warm
        # loaders, the render pool and the Redis connection with one render of another image.
        await asyncio.gather(*(get(ports[i % len(ports)], "/_/health") for i in range(BURST)))
        for port in ports:
            await get(port, f"/{warm_name}?w=300")
        bursts = []
        for i, (alone_q, burst_q) in enumerate(zip(REFERENCE_QUALITIES, BURST_QUALITIES, strict=True)):
            path = f"/{name}?{QUERY}&q={alone_q}"
            status, cache, alone_render, _, alone = await get(ports[i % len(ports)], path)
            if status != 200 or cache != "miss":
                raise RuntimeError(f"lone GET {path} -> {status}, X-Cache {cache!r}")
            path = f"/{name}?{QUERY}" + (f"&q={burst_q}" if burst_q is not None else "")
            before = await renders()
            results = await asyncio.gather(*(get(ports[j % len(ports)], path) for j in range(BURST)))
            after = await renders()
            latencies = [r[4] * 1000 for r in results]
            leader = [r[2] for r in results if r[1] == "miss" and r[2] is not None]
            bursts.append(
                {
                    "renders": after - before,
                    "ok": sum(1 for r in results if r[0] == 200),
                    "bodies": len({hashlib.sha256(r[3]).digest() for r in results}),
                    "size": len(results[0][3]),
                    "caches": Counter(r[1] for r in results),
                    "p50": percentile(latencies, 50),
                    "p99": percentile(latencies, 99),
                    "max": max(latencies),
                    "one": alone * 1000,
                    "one_render": alone_render if alone_render is not None else float("nan"),
                    "leader_render": leader[0] if leader else float("nan"),
                }
            )
    caches: Counter[str | None] = Counter()
    for b in bursts:
        caches.update(b["caches"])

    def median(field: str) -> float:
        return statistics.median(b[field] for b in bursts)

    return {
        "n": len(bursts),
        "renders": [b["renders"] for b in bursts],
        "ok": sum(b["ok"] for b in bursts),
        "bodies": max(b["bodies"] for b in bursts),
        "size": bursts[0]["size"],
        "caches": caches,
        "p50": median("p50"),
        "p99": median("p99"),
        "max": max(b["max"] for b in bursts),
        "one": median("one"),
        "one_render": median("one_render"),
        "leader_render": median("leader_render"),
        "ratio": statistics.median(b["p99"] / b["one"] for b in bursts),
        "ratios": [b["p99"] / b["one"] for b in bursts],
    }


def bench_cache(
    args: argparse.Namespace,
    names: list[str],
    sources: dict[str, bytes],
    corpus: Path,
    tmp: Path,
    summary: list[tuple[str, str, str, str]],
) -> None:
    """Memory-hit and Redis-hit throughput against the bare floor (wrk), then coalescing of one cold
    burst (one process without Redis; two processes sharing Redis); appends summary rows. Redis
    keys live under a per-run prefix and are deleted at the end (nothing else is touched)."""
    import redis as redis_sync

    started = time.perf_counter()
    hit_names = [n for n in CACHE_IMAGES if n in sources] or [n for n in names if n.endswith(".jpg")][:3]
    burst_name = (
        COALESCE_IMAGE
        if COALESCE_IMAGE in sources
        else next((n for n in names if n.startswith("M-") and n not in hit_names), names[0])
    )
    settings = origin_settings()
    lease_ms = settings.redis_lease * 1000
    prefix = f"bench-{os.getpid()}-{int(time.time())}:"
    redis_env = {"IMAGE_ORIGIN_REDIS_URL": args.redis_url, "IMAGE_ORIGIN_REDIS_PREFIX": prefix}
    no_redis = {"IMAGE_ORIGIN_REDIS_URL": ""}  # "" = no Redis, whatever the environment says
    section(
        f"cache hits vs bare (wrk c={CACHE_WRK_CONNECTIONS}, {CACHE_WRK_ROUNDS}x{CACHE_WRK_SECONDS} s)"
        f" + coalescing ({BURST} cold GETs)"
    )
    rclient = redis_sync.Redis.from_url(args.redis_url, socket_timeout=5, socket_connect_timeout=2)
    try:
        rclient.ping()
        have_redis = True
    except redis_sync.RedisError as exc:
        print(f"Redis at {args.redis_url} is not reachable ({exc}): the Redis rows are skipped")
        have_redis = False

    storage = tmp / "cache-storage"
    storage.mkdir()
    for name in {*hit_names, burst_name}:
        shutil.copyfile(corpus / name, storage / name)
    servers: list[Server] = []
    runs: dict[str, dict[str, float]] = {}
    wrk_renders: dict[str, int] = {}
    bursts: dict[str, dict[str, object]] = {}
    deleted = 0
    try:
        mem = start_origin("cache-memory", storage, CACHE_BYTES, tmp, **no_redis)
        servers.append(mem)
        red = start_origin("cache-redis", storage, 0, tmp, **redis_env) if have_redis else None
        if red is not None:
            servers.append(red)
        for server in servers:
            server.wait_ready()

        # The bare server answers the memory origin's bytes.
        bodies = tmp / "cache-bodies"
        bodies.mkdir()
        mem_get = Fetcher(mem.port, None)
        for name in hit_names:
            (bodies / name).write_bytes(mem_get(name))
        (bodies / "types.json").write_text(json.dumps(mem_get.types))
        mem_get.expect_cache = "memory"
        for name in hit_names:
            mem_get(name)
        bare = start_bare(bodies, tmp)
        servers.append(bare)
        bare.wait_ready()
        sizes = ", ".join(f"{mem_get.sizes[n] / 1024:.0f}" for n in hit_names)
        print(f"hit variants (wrk rotates them): {', '.join(hit_names)} at {QUERY} ({sizes} KB)")

        red_get = None
        if red is not None:
            taken = warm_redis(red.port, hit_names, rclient, prefix, lease_ms)
            red_get = Fetcher(red.port, "redis")
            same = all(red_get(n) == (bodies / n).read_bytes() for n in hit_names)
            print(
                f"Redis origin (IMAGE_ORIGIN_CACHE_BYTES=0, prefix {prefix!r}): admitted after "
                f"{', '.join(str(taken[n]) for n in hit_names)} requests (redis_hot_sightings = "
                f"{settings.redis_hot_sightings}); X-Cache: redis; bodies as the memory origin's: "
                f"{'yes' if same else 'NO'}"
            )

        script = write_wrk_script(hit_names, tmp / "cache.lua")
        targets = [(label, server) for label, server in (("bare", bare), ("memory", mem), ("redis", red)) if server]
        before = {label: health_renders(server.port) for label, server in targets if server is not bare}
        rounds: dict[str, list[dict[str, float]]] = {label: [] for label, _ in targets}
        for i in range(CACHE_WRK_ROUNDS):
            for label, server in targets[::-1] if i % 2 else targets:
                rounds[label].append(run_wrk(args.wrk, server.port, script, CACHE_WRK_CONNECTIONS, CACHE_WRK_SECONDS))
        wrk_renders = {
            label: health_renders(server.port) - before[label] for label, server in targets if server is not bare
        }
        for label, results in rounds.items():  # req/s over all rounds; latencies: mean of the rounds, max of max
            total = {k: sum(r[k] for r in results) for k in ("requests", "duration_us", "errors")}
            runs[label] = {
                **total,
                "rps": total["requests"] / (total["duration_us"] / 1e6),
                "p50_us": statistics.mean(r["p50_us"] for r in results),
                "p99_us": statistics.mean(r["p99_us"] for r in results),
                "max_us": max(r["max_us"] for r in results),
                "round_rps": [r["rps"] for r in results],
            }
        for name in hit_names:  # still hits after the runs (raises otherwise)
            mem_get(name)
            if red_get is not None:
                red_get(name)
        mem_get.close()
        if red_get is not None:
            red_get.close()
        for server in (bare, red, mem):
            if server is not None:
                server.stop()

        bare_rps = runs["bare"]["rps"]
        print(
            f"{'run':14} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'requests':>9} {'errors':>6}"
            f" {'renders':>7} {'vs bare':>7}  (req/s per round)"
        )
        for label, r in runs.items():
            print(
                f"{label + (' (floor)' if label == 'bare' else ' hit'):14} {r['rps']:>9.0f}"
                f" {r['p50_us'] / 1000:>7.2f} {r['p99_us'] / 1000:>7.2f} {r['max_us'] / 1000:>7.1f}"
                f" {int(r['requests']):>9} {int(r['errors']):>6} {wrk_renders.get(label, '-'):>7}"
                f" {r['rps'] / bare_rps:>7.3f}  ({', '.join(f'{x:.0f}' for x in r['round_rps'])})"
            )

        # Coalescing: fresh servers, the variant never requested before.
        single = start_origin("coalesce-single", storage, CACHE_BYTES, tmp, **no_redis)
        servers.append(single)
        scenarios = {"1 proc": [single]}
        if have_redis:
            pair = [start_origin(f"coalesce-replica{i}", storage, CACHE_BYTES, tmp, **redis_env) for i in (1, 2)]
            servers.extend(pair)
            scenarios["2 proc+Redis"] = pair
        for group in scenarios.values():
            for server in group:
                server.wait_ready()
        warm_name = min(hit_names, key=lambda n: len(sources[n]))
        for label, group in scenarios.items():
            bursts[label] = asyncio.run(coalesce_burst([s.port for s in group], burst_name, warm_name))
    finally:
        for server in reversed(servers):
            server.stop()
        if have_redis:  # after the stops: a stopping origin flushes its popularity counts
            with contextlib.suppress(redis_sync.RedisError):
                deleted = delete_prefix(rclient, prefix)
        rclient.close()

    first = next(iter(bursts.values()))
    print(
        f"coalescing: {first['n']} rounds of [one cold GET alone, then {BURST} concurrent cold GETs of another"
        f" variant] of /{burst_name}?{QUERY}\n  (q=75/73/78 burst, 74/76/77 alone: same cost,"
        f" {first['size'] / 1024:.0f} KB), open keep-alive connections, fresh servers (2 procs: {BURST // 2}"
        f" each); medians of the rounds"
    )
    print(
        f"{'scenario':13} {'renders':>7} {'200s':>7} {'bodies':>6} {'one ms':>6} {'render':>6} {'leader':>6}"
        f" {'p50 ms':>6} {'p99 ms':>6} {'max ms':>6} {'p99/one':>7}  X-Cache"
    )
    for label, b in bursts.items():
        caches = ", ".join(f"{k} {v}" for k, v in sorted(b["caches"].items(), key=lambda kv: -kv[1]))
        print(
            f"{label:13} {','.join(map(str, b['renders'])):>7} {b['ok']:>3}/{b['n'] * BURST:<3} {b['bodies']:>6}"
            f" {b['one']:>6.0f} {b['one_render']:>6.0f} {b['leader_render']:>6.0f} {b['p50']:>6.0f} {b['p99']:>6.0f}"
            f" {b['max']:>6.0f} {b['ratio']:>7.2f}  {caches}"
        )
    print(
        "renders per burst; one = the lone request's client time; render/leader = the server's own render"
        " time alone / during the burst;\n  p99/one per round: "
        + "; ".join(f"{label} " + ", ".join(f"{r:.2f}" for r in b["ratios"]) for label, b in bursts.items())
    )
    if have_redis:
        print(f"Redis keys under {prefix!r} deleted: {deleted}")
    print(f"section took {time.perf_counter() - started:.0f} s")

    # ------------------------------------------------------------------ summary
    mem_ratio = runs["memory"]["rps"] / bare_rps
    summary.append(
        (
            f"cache hit c={CACHE_WRK_CONNECTIONS} req/s mem/redis/bare",
            "/".join(f"{runs[k]['rps']:.0f}" if k in runs else "-" for k in ("memory", "redis", "bare")),
            "info",
            "-",
        )
    )
    summary.append(
        (
            "memory hit/bare wrk req/s",
            f"{mem_ratio:.3f}",
            f">= {HIT_RATIO_TARGET:.2f}",
            verdict(mem_ratio >= HIT_RATIO_TARGET),
        )
    )
    if "redis" in runs:
        redis_ratio = runs["redis"]["rps"] / bare_rps
        summary.append(
            (
                "redis hit/bare wrk req/s",
                f"{redis_ratio:.3f}",
                f">= {REDIS_RATIO_TARGET:.2f}",
                verdict(redis_ratio >= REDIS_RATIO_TARGET),
            )
        )
    else:
        summary.append(("redis hit/bare wrk req/s", "no Redis", f">= {REDIS_RATIO_TARGET:.2f}", "SKIP"))
    hit_renders = sum(wrk_renders.values())
    errors = sum(int(r["errors"]) for r in runs.values())
    summary.append(
        ("cache wrk errors, renders", f"{errors}, {hit_renders}", "0, 0", verdict(errors == 0 and hit_renders == 0))
    )
    for label, b in bursts.items():
        summary.append(
            (
                f"coalesce {label} renders",
                ",".join(map(str, b["renders"])),
                "1",
                verdict(all(r == 1 for r in b["renders"])),
            )
        )
        fine = b["ok"] == b["n"] * BURST and b["bodies"] == 1
        summary.append(
            (f"coalesce {label} 200s, bodies", f"{b['ok']}/{b['n'] * BURST}, {b['bodies']}", "all, 1", verdict(fine))
        )
        summary.append(
            (
                f"coalesce {label} p99/one",
                f"{b['ratio']:.2f}",
                f"<= {COALESCE_P99_TARGET:.1f}",
                verdict(b["ratio"] <= COALESCE_P99_TARGET),
            )
        )
    if not have_redis:
        summary.append(("coalesce 2 proc+Redis", "no Redis", "-", "SKIP"))


# ---------------------------------------------------------------------------- uploads


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


def write_fsync(path: Path, data: bytes) -> None:
    """The local floor: create the file, write every byte, fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def content_type(name: str) -> str:
    return "image/jpeg" if name.endswith(".jpg") else "image/png"


Put = Callable[[str, bytes], Awaitable[None]]


class UploadRun:
    """Corpus passes through the origin (`POST /bench-upload`, one `data` part per request)
    and through a floor, alternately, at each concurrency; every upload gets a fresh name."""

    def __init__(self, port: int, token: str, names: list[str], sources: dict[str, bytes]) -> None:
        self.url = f"http://127.0.0.1:{port}/{UPLOAD_FOLDER}"
        self.auth = {"Authorization": f"Bearer {token}"}
        self.names, self.sources = names, sources
        self.serial = 0

    def items(self, tag: str) -> list[tuple[str, bytes]]:
        """One corpus pass under names never used before (no 409)."""
        self.serial += 1
        return [(f"{tag}{self.serial:04d}-{name}", self.sources[name]) for name in self.names]

    async def origin_put(self, session: aiohttp.ClientSession, name: str, data: bytes) -> None:
        form = aiohttp.FormData()
        form.add_field("data", data, filename=name, content_type="application/octet-stream")
        async with session.post(self.url, data=form, headers=self.auth) as response:
            body = await response.read()
            if response.status != 201:
                raise RuntimeError(f"POST {self.url} {name} -> {response.status}: {body[:300]!r}")
            stored = json.loads(body)["images"][0]
            if stored["size"] != len(data):
                raise RuntimeError(f"POST {name}: stored {stored['size']} bytes of {len(data)}")

    @staticmethod
    async def one_pass(items: list[tuple[str, bytes]], concurrency: int, put: Put) -> float:
        """Seconds to put every item with `concurrency` workers taking the next one as they finish."""
        queue = iter(items)

        async def worker() -> None:
            for name, data in queue:
                await put(name, data)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0

    async def measure(
        self, floor: Put, cleanup: Callable[[], Awaitable[None]], check: Callable[[], float]
    ) -> dict[int, dict[str, float]]:
        """{concurrency: {origin, floor: median seconds per pass, passes}}; objects removed between
        passes. At concurrency 1, `check` (one in-process validation pass, seconds) runs after
        each origin/floor pair too, so its share of the upload time sees the same load."""
        timeout = aiohttp.ClientTimeout(total=120)
        connector = aiohttp.TCPConnector(limit=max(UPLOAD_CONCURRENCY))
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

            async def origin(name: str, data: bytes) -> None:
                await self.origin_put(session, name, data)

            smallest = min(self.names, key=lambda n: len(self.sources[n]))
            for tag, put in (("w", origin), ("v", floor)):  # warm-up: connections, first write, loaders
                await put(f"{tag}0000-{smallest}", self.sources[smallest])
            await cleanup()
            results = {}
            for concurrency in UPLOAD_CONCURRENCY:
                times: dict[str, list[float]] = {"origin": [], "floor": [], "check": []}
                start = time.perf_counter()
                for rep in range(UPLOAD_MAX_PASSES):
                    order = [("origin", "o", origin), ("floor", "f", floor)]
                    for label, tag, put in order[::-1] if rep % 2 else order:
                        times[label].append(await self.one_pass(self.items(tag), concurrency, put))
                    await cleanup()
                    if concurrency == 1:
                        times["check"].append(check())
                    if rep + 1 >= UPLOAD_MIN_PASSES and time.perf_counter() - start > UPLOAD_BUDGET:
                        break
                results[concurrency] = {label: statistics.median(values) for label, values in times.items() if values}
                results[concurrency]["passes"] = len(times["origin"])
            return results


async def upload_local(run: UploadRun, storage: Path, check: Callable[[], float]) -> dict[int, dict[str, float]]:
    folder = storage / UPLOAD_FOLDER  # the folder the origin writes the uploads into

    async def floor(name: str, data: bytes) -> None:
        await asyncio.to_thread(write_fsync, folder / name, data)

    def empty() -> None:
        for entry in folder.iterdir():
            entry.unlink()

    async def cleanup() -> None:
        await asyncio.to_thread(empty)

    folder.mkdir(parents=True, exist_ok=True)
    return await run.measure(floor, cleanup, check)


async def upload_s3(
    run: UploadRun, endpoint: str, bucket: str, check: Callable[[], float]
) -> dict[int, dict[str, float]]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    # The origin's own client settings (origin/storage/s3.py): path style, no default CRC32 trailers.
    config = AioConfig(
        retries={"mode": "standard", "max_attempts": 2},
        max_pool_connections=16,
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    prefix = f"{S3_PREFIX}/{UPLOAD_FOLDER}/"
    async with get_session().create_client("s3", region_name=S3_REGION, endpoint_url=endpoint, config=config) as client:

        async def floor(name: str, data: bytes) -> None:
            # The PUT the origin's storage makes: create-only, sniffed content type.
            await client.put_object(
                Bucket=bucket, Key=prefix + name, Body=data, ContentType=content_type(name), IfNoneMatch="*"
            )

        async def cleanup() -> None:
            while True:
                listed = await client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1000)
                keys = [{"Key": item["Key"]} for item in listed.get("Contents", [])]
                if not keys:
                    return
                await client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})

        return await run.measure(floor, cleanup, check)


def validate_pass(names: list[str], sources: dict[str, bytes]) -> Callable[[], float]:
    """One sequential corpus pass of the upload check (sniff, markup scan, probe, full decode
    via avg()), in-process: what the origin runs in its render pool per upload. Returns seconds."""
    config = RenderConfig()
    for name in names:  # warm-up: loaders
        if name.startswith("S-"):
            validate(sources[name], config, RenderGuard())

    def run() -> float:
        t0 = time.perf_counter()
        for name in names:
            validate(sources[name], config, RenderGuard())
        return time.perf_counter() - t0

    return run


def bench_upload(
    names: list[str], sources: dict[str, bytes], tmp: Path, summary: list[tuple[str, str, str, str]]
) -> None:
    """Upload throughput over HTTP (management API) on the local folder and on S3 (moto on
    loopback, in this process), each against its raw floor; appends summary rows."""
    pass_bytes = sum(len(sources[n]) for n in names)
    section(
        f"upload throughput: POST /{UPLOAD_FOLDER} (1 file/request) vs raw write, concurrency "
        + " and ".join(str(c) for c in UPLOAD_CONCURRENCY)
    )
    print(
        f"one pass = the {len(names)} corpus files, {pass_bytes / MB:.1f} MB (MB = 10^6 bytes); "
        f"median of {UPLOAD_MIN_PASSES}-{UPLOAD_MAX_PASSES} passes per row, origin and floor alternated"
    )
    started = time.perf_counter()
    token = "bench-" + secrets.token_hex(16)
    check = validate_pass(names, sources)
    results: dict[str, dict[int, dict[str, float]]] = {}
    servers: list[Server] = []
    moto = None
    with patched_environ(aws_test_env()):
        try:
            storage = tmp / "upload-local"
            storage.mkdir()
            local = start_origin("origin-upload-local", storage, 0, tmp, IMAGE_ORIGIN_TOKENS=token)
            servers.append(local)
            local.wait_ready()
            results["local"] = asyncio.run(upload_local(UploadRun(local.port, token, names, sources), storage, check))
            local.stop()

            import boto3
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            moto.start()
            host, port = moto.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            bucket = f"bench-{uuid.uuid4().hex[:12]}"
            boto3.client("s3", endpoint_url=endpoint, region_name=S3_REGION).create_bucket(Bucket=bucket)
            s3_url = f"s3://{bucket}/{S3_PREFIX}?endpoint_url={endpoint}&region={S3_REGION}"
            s3 = start_origin("origin-upload-s3", s3_url, 0, tmp, IMAGE_ORIGIN_TOKENS=token)
            servers.append(s3)
            s3.wait_ready()
            results["s3"] = asyncio.run(upload_s3(UploadRun(s3.port, token, names, sources), endpoint, bucket, check))
        finally:
            for server in reversed(servers):
                server.stop()
            if moto is not None:
                moto.stop()

    floors = {"local": "write+fsync, same folder", "s3": "put_object, same moto"}
    print(
        f"{'backend':8} {'c':>2} {'origin MB/s':>11} {'files/s':>8} {'floor MB/s':>10} {'files/s':>8}"
        f" {'origin/floor':>12} {'passes':>6}  floor"
    )
    for backend, rows in results.items():
        for concurrency, row in rows.items():
            ratio = row["floor"] / row["origin"]
            row["ratio"] = ratio
            print(
                f"{backend:8} {concurrency:>2} {pass_bytes / MB / row['origin']:>11.1f}"
                f" {len(names) / row['origin']:>8.1f} {pass_bytes / MB / row['floor']:>10.1f}"
                f" {len(names) / row['floor']:>8.1f} {ratio:>12.2f} {int(row['passes']):>6}  {floors[backend]}"
            )
    shares = {backend: rows[1]["check"] / rows[1]["origin"] for backend, rows in results.items() if 1 in rows}
    check_s = statistics.median(rows[1]["check"] for rows in results.values() if 1 in rows)
    print("origin/floor = origin MB/s over floor MB/s (1.0 = no overhead)")
    print(
        f"upload check in-process (sniff, markup scan, probe, full decode), sequential, alternated with the"
        f" c=1 passes: {check_s * 1000:.0f} ms a pass = {pass_bytes / MB / check_s:.1f} MB/s = "
        + ", ".join(f"{share:.0%} of the {backend} c=1 upload time" for backend, share in shares.items())
    )
    print(
        f"moto runs in this process (its threads share the GIL with the bench's client); "
        f"section took {time.perf_counter() - started:.0f} s"
    )

    for backend, rows in results.items():
        for concurrency, row in rows.items():
            summary.append(
                (
                    f"upload {backend} c={concurrency} MB/s, files/s",
                    f"{pass_bytes / MB / row['origin']:.1f}, {len(names) / row['origin']:.1f}",
                    "info",
                    "-",
                )
            )
        summary.append(
            (
                f"upload {backend} origin/floor c=" + ",".join(str(c) for c in rows),
                ", ".join(f"{row['ratio']:.2f}" for row in rows.values()),
                "info",
                "-",
            )
        )
    summary.append(
        (
            "upload check share c=1 " + ",".join(shares),
            ", ".join(f"{share:.0%}" for share in shares.values()),
            "info",
            "-",
        )
    )


# ---------------------------------------------------------------------------- worker


# Worker section. (1) Latency from an object landing in S3 to its warm variants in derived storage:
# moto (S3 + SQS, in this process) on loopback, bucket notification -> SQS queue -> a real
# `python -m workers` subprocess; uploads one at a time, spaced by WORKER_GAP after the previous one
# is done (an idle worker: the pipeline's own latency, no queueing). (2) The backfill rate of
# `image-origin warm` on a local folder against the raw pyvips rate of the same variants.
WORKER_PRESETS = {  # name -> params; every one `warm: true`
    "card": {"w": 600, "h": 400, "fit": "crop", "auto": "format"},  # AVIF, WebP and the source's format
    "thumb": {"w": 160, "h": 160, "fit": "crop"},  # the source's format
}
WORKER_UPLOADS = 50
WORKER_GAP = 0.05  # s between one upload's last variant seen and the next PUT
WORKER_POLL = 0.02  # s between listings of the derived prefix
WORKER_UPLOAD_TIMEOUT = 30.0  # s per upload
WORKER_UPLOAD_BUDGET = 70.0  # s for all the uploads (stops early, saying so)
WORKER_DELIVERY_PROBES = 5  # PUT -> message receivable, measured with our own long poll before the worker starts
WORKER_BUCKET_PREFIX = "origin/bench"
WORKER_DERIVED_PREFIX = "derived"
WORKER_KEY_FOLDER = "worker"
WORKER_HANDLED = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \w+ workers\.handler: created (\S+) \(\w+\): (\w+)$", re.M
)


def worker_variant_count() -> int:
    """Variants per source: an `auto=format` spec once per negotiable format (AVIF, WebP, legacy)."""
    return sum(3 if params.get("auto") == "format" else 1 for params in WORKER_PRESETS.values())


def write_worker_presets(path: Path) -> Path:
    lines = ["presets:"]
    for name, params in WORKER_PRESETS.items():
        lines.append(f"  {name}: {{" + ", ".join(f"{k}: {v}" for k, v in params.items()) + ", warm: true}")
    lines += ["presets_only: false", "allowed_widths: []"]
    path.write_text("\n".join(lines) + "\n")
    return path


def raw_variants(settings) -> Callable[[bytes, str], int]:
    """The floor of one source's warm variants, in-process: per variant, pyvips thumbnail (crop to
    the box, centre) + the origin's own encode call with the worker's quality and efforts, each
    variant from the encoded source as the worker renders them (one decode per variant)."""
    from origin.app import render_config
    from origin.render.encode import encode

    config = render_config(settings)
    plans = []
    for params in WORKER_PRESETS.values():
        spec = parse_query([(k, str(v)) for k, v in params.items()])
        fmts = ("avif", "webp", None) if params.get("auto") == "format" else (None,)  # None: the source's own
        plans.append((spec, fmts))

    def run(data: bytes, name: str) -> int:
        source_fmt = "jpg" if name.endswith(".jpg") else "png"
        total = 0
        for spec, fmts in plans:
            for fmt in fmts:
                image = pyvips.Image.thumbnail_buffer(data, spec.w, height=spec.h, crop="centre")
                total += len(encode(image, fmt or source_fmt, spec, config))
        return total

    return run


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a child process so far (/proc/PID/stat), NaN if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def wall_of_log(stamp: str, millis: str) -> float:
    """A `logging` asctime (local time, ms) as a Unix time."""
    return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000


def worker_handled(log: Path) -> dict[str, tuple[float, str]]:
    """key -> (Unix time the worker logged the created event done, outcome), the last per key."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return {m.group(3): (wall_of_log(m.group(1), m.group(2)), m.group(4)) for m in WORKER_HANDLED.finditer(text)}


def wait_for_line(server: Server, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in server.log.read_text(errors="replace"):
            return
        if server.proc.poll() is not None:
            break
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{server.name} did not start:\n{server.log.read_text(errors='replace')[-2000:]}")


def measure_delivery(s3, sqs, bucket: str, queue_url: str, data: bytes) -> list[float]:
    """ms from a PUT returning to its notification being received by a long poll (moto's S3 -> SQS leg),
    before the worker runs; the probe objects lie outside the worker's prefix and are deleted."""
    drain_queue(sqs, queue_url)  # the s3:TestEvent sent when the notification was configured
    times = []
    for i in range(WORKER_DELIVERY_PROBES):
        key = f"probe/{i}.jpg"
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")
        t0 = time.perf_counter()
        reply = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=5)
        times.append((time.perf_counter() - t0) * 1000)
        for message in reply.get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        s3.delete_object(Bucket=bucket, Key=key)
    drain_queue(sqs, queue_url)  # the probes' removal sends nothing: the notification is created-only
    return times


def drain_queue(sqs, queue_url: str) -> None:
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages")
        if not messages:
            return
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def derived_count(s3, bucket: str, key: str) -> int:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{WORKER_DERIVED_PREFIX}/{key}/", MaxKeys=1000)
    return int(listed.get("KeyCount", 0))


def upload_and_wait(s3, bucket: str, derived_bucket: str, key: str, data: bytes, expected: int) -> dict[str, float]:
    """PUT one original, then list its derived prefix every WORKER_POLL s until `expected` variants are
    there (or WORKER_UPLOAD_TIMEOUT): {put, latency (ms from the PUT returning), seen (Unix time), count}."""
    t0 = time.perf_counter()
    s3.put_object(Bucket=bucket, Key=f"{WORKER_BUCKET_PREFIX}/{key}", Body=data, ContentType=content_type(key))
    landed, landed_wall = time.perf_counter(), time.time()
    count = 0
    while time.perf_counter() - landed < WORKER_UPLOAD_TIMEOUT:
        count = derived_count(s3, derived_bucket, key)
        if count >= expected:
            break
        time.sleep(WORKER_POLL)
    now = time.perf_counter()
    return {
        "put": (landed - t0) * 1000,
        "latency": (now - landed) * 1000,
        "landed": landed_wall,
        "seen": landed_wall + (now - landed),
        "count": count,
        "ok": count >= expected,
    }


def bench_worker(
    names: list[str], sources: dict[str, bytes], corpus: Path, tmp: Path, summary: list[tuple[str, str, str, str]]
) -> None:
    """(1) S3 upload -> warm variants readable, through SQS and a worker subprocess (moto on loopback);
    (2) `image-origin warm` backfill rate against raw pyvips with the same concurrency. Summary rows (info)."""
    started = time.perf_counter()
    settings = origin_settings()
    concurrency = settings.render_workers
    expected = worker_variant_count()
    presets = write_worker_presets(tmp / "worker-presets.yaml")
    preset_text = "; ".join(f"{n} " + "&".join(f"{k}={v}" for k, v in p.items()) for n, p in WORKER_PRESETS.items())
    section("worker: S3 upload -> warm variants readable (SQS, moto) | `image-origin warm` backfill vs raw")
    print(
        f"warm presets: {preset_text} -> {expected} variants per original; worker render_workers={concurrency},"
        f" worker_concurrency={settings.worker_concurrency}, sqs_wait_seconds={settings.sqs_wait_seconds}"
    )
    # The subprocesses' environment: ours, with dummy AWS credentials and no profile or metadata lookups,
    # and of IMAGE_ORIGIN_* only the render pool size. Nothing beyond this machine: no Redis (no popular
    # specs), no CDN purges, no webhook.
    aws = aws_test_env()
    base_env = {
        k: v
        for k, v in os.environ.items()
        if k not in aws and (not k.startswith("IMAGE_ORIGIN_") or k == "IMAGE_ORIGIN_RENDER_WORKERS")
    }
    base_env.update({k: v for k, v in aws.items() if v is not None})
    quiet = {
        "IMAGE_ORIGIN_REDIS_URL": "",
        "IMAGE_ORIGIN_CLOUDFRONT_DISTRIBUTION_ID": "",
        "IMAGE_ORIGIN_CLOUDFLARE_ZONE_ID": "",
        "IMAGE_ORIGIN_CLOUDFLARE_API_TOKEN": "",
        "IMAGE_ORIGIN_PRESETS": str(presets),
        "IMAGE_ORIGIN_LOG_LEVEL": "INFO",
    }
    results: list[dict[str, float]] = []
    delivery: list[float] = []
    handled: dict[str, tuple[float, str]] = {}
    stored_types: Counter[str] = Counter()
    stopped_early = False
    worker: Server | None = None
    moto = None
    with patched_environ(aws_test_env()):
        try:
            import boto3
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            moto.start()
            host, port = moto.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name=S3_REGION)
            sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=S3_REGION)
            run_id = uuid.uuid4().hex[:12]
            bucket, derived_bucket = f"bench-originals-{run_id}", f"bench-derived-{run_id}"
            s3.create_bucket(Bucket=bucket)
            s3.create_bucket(Bucket=derived_bucket)
            queue_url = sqs.create_queue(QueueName=f"bench-events-{run_id}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={
                    "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
                },
            )
            smallest = min(names, key=lambda n: len(sources[n]))
            delivery = measure_delivery(s3, sqs, bucket, queue_url, sources[smallest])

            env = {
                **base_env,
                **quiet,
                "IMAGE_ORIGIN_STORAGE_URL": f"s3://{bucket}/{WORKER_BUCKET_PREFIX}?endpoint_url={endpoint}&region={S3_REGION}",
                "IMAGE_ORIGIN_DERIVED_STORAGE_URL": f"s3://{derived_bucket}/{WORKER_DERIVED_PREFIX}?endpoint_url={endpoint}&region={S3_REGION}",
                "IMAGE_ORIGIN_SQS_QUEUE_URL": queue_url,
                "IMAGE_ORIGIN_SQS_ENDPOINT_URL": endpoint,
            }
            worker = Server("worker", [sys.executable, "-m", "workers"], env, 0, tmp / "worker.log", REPO)
            wait_for_line(worker, "workers.sqs: reading ", READY_TIMEOUT)

            # Warm-up (not counted): the handler opens storage, derived storage and the render pool on first use.
            warm_key = f"{WORKER_KEY_FOLDER}/warmup-{smallest}"
            first = upload_and_wait(s3, bucket, derived_bucket, warm_key, sources[smallest], expected)
            if not first["ok"]:
                raise RuntimeError(
                    f"warm-up upload: {int(first['count'])}/{expected} variants after "
                    f"{WORKER_UPLOAD_TIMEOUT:.0f} s:\n{worker.log.read_text(errors='replace')[-2000:]}"
                )
            listed = s3.list_objects_v2(Bucket=derived_bucket, Prefix=f"{WORKER_DERIVED_PREFIX}/{warm_key}/")
            for item in listed.get("Contents", []):
                head = s3.head_object(Bucket=derived_bucket, Key=item["Key"])
                stored_types[head["ContentType"]] += 1

            phase, phase_cpu, worker_cpu = time.perf_counter(), time.process_time(), proc_cpu_seconds(worker.pid)
            for i in range(WORKER_UPLOADS):
                if time.perf_counter() - phase > WORKER_UPLOAD_BUDGET:
                    stopped_early = True
                    break
                name = names[i % len(names)]
                row = upload_and_wait(
                    s3, bucket, derived_bucket, f"{WORKER_KEY_FOLDER}/{i:03d}-{name}", sources[name], expected
                )
                row["name"] = name
                results.append(row)
                time.sleep(WORKER_GAP)
            phase_wall = time.perf_counter() - phase
            bench_cpu = time.process_time() - phase_cpu  # moto's threads + the polling client
            worker_cpu = proc_cpu_seconds(worker.pid) - worker_cpu
            time.sleep(0.3)  # the last log lines
            handled = worker_handled(worker.log)
        finally:
            if worker is not None:
                worker.stop()
            if moto is not None:
                moto.stop()

    # Per upload: the worker's own "done" log time splits the latency into worker side and detection.
    run = raw_variants(settings)
    for name in names:  # loaders and the encoders' first use
        if name.startswith("S-"):
            run(sources[name], name)
    raw_serial: dict[str, float] = {}
    raw_cpu: dict[str, float] = {}
    for name in sorted({row["name"] for row in results}):
        t0, c0 = time.perf_counter(), time.process_time()
        run(sources[name], name)
        raw_serial[name] = (time.perf_counter() - t0) * 1000
        raw_cpu[name] = time.process_time() - c0
    for i, row in enumerate(results):
        key = f"{WORKER_KEY_FOLDER}/{i:03d}-{row['name']}"
        done, outcome = handled.get(key, (float("nan"), "-"))
        row["outcome"] = outcome
        row["to_done"] = (done - row["landed"]) * 1000
        row["detect"] = (row["seen"] - done) * 1000
        row["raw"] = raw_serial[row["name"]]
    ok = [row for row in results if row["ok"]]
    outcomes = Counter(row["outcome"] for row in results)

    def p50_p95(field: str, rows: list[dict[str, float]] = ok) -> tuple[float, float]:
        values = [row[field] for row in rows if math.isfinite(row[field])]
        return (statistics.median(values), percentile(values, 95)) if values else (float("nan"), float("nan"))

    lat = p50_p95("latency")
    print(
        f"(1) {len(results)} uploads (corpus cycled, unique keys, boto3 put_object to moto), one at a time,"
        f" {WORKER_GAP * 1000:.0f} ms after the previous one's variants were all listed;"
        f" derived prefix listed every {WORKER_POLL * 1000:.0f} ms"
    )
    print(
        f"    variants per upload: {expected} expected; stored for the warm-up upload: "
        + ", ".join(f"{n} {t}" for t, n in sorted(stored_types.items()))
        + f"; complete: {len(ok)}/{len(results)}"
        + (f" (stopped at the {WORKER_UPLOAD_BUDGET:.0f} s budget)" if stopped_early else "")
        + "; worker outcomes: "
        + ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
    )
    print(f"{'ms, over the uploads':40} {'median':>8} {'p95':>8}")
    rows = [
        ("landed -> all variants listed", "latency"),
        ("  landed -> worker logged it done", "to_done"),
        ("  worker done -> bench listing saw it", "detect"),
        ("  raw pyvips, same variants, in-process", "raw"),
        ("PUT itself (not counted)", "put"),
    ]
    for label, field in rows:
        low, high = p50_p95(field)
        print(f"{label:40} {fmt_ms(low):>8} {fmt_ms(high):>8}")
    overhead = [row["to_done"] - row["raw"] for row in ok if math.isfinite(row["to_done"])]
    overhead_p50 = statistics.median(overhead) if overhead else float("nan")
    render_share = statistics.median(row["raw"] / row["latency"] for row in ok) if ok else float("nan")
    print(
        f"S3 -> SQS delivery alone (PUT returned -> our long poll received it, {len(delivery)} probes before"
        f" the worker ran): median {fmt_ms(statistics.median(delivery)) if delivery else '-'} ms;"
        f" worker side beyond the raw render (median of to_done - raw): {fmt_ms(overhead_p50)} ms;"
        f" raw render / latency (median): {render_share:.0%}"
    )
    raw_cpu_total = sum(raw_cpu[row["name"]] for row in results)
    print(
        f"CPU during the {phase_wall:.0f} s of uploads: worker {worker_cpu:.1f} s ({worker_cpu / max(1, len(results)) * 1000:.0f}"
        f" ms an upload; raw pyvips for the same images {raw_cpu_total / max(1, len(results)) * 1000:.0f} ms), bench"
        f" process (moto + polling) {bench_cpu:.1f} s = {bench_cpu / phase_wall:.0%} of one CPU"
    )
    slowest = sorted(ok, key=lambda row: -row["latency"])[:3]
    print(
        "slowest: "
        + "; ".join(f"{row['name']} {fmt_ms(row['latency'])} ms (raw {fmt_ms(row['raw'])})" for row in slowest)
    )

    # (2) Backfill: a raw pass (pyvips, a thread pool of warm's concurrency over the same images in warm's
    # listing order), `image-origin warm` on a local folder of corpus copies, another raw pass: drifting
    # load reaches both sides alike.
    from concurrent.futures import ThreadPoolExecutor

    ordered = sorted(names)

    raw_cpus: list[float] = []

    def raw_pass() -> float:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            t0, c0 = time.perf_counter(), time.process_time()
            list(pool.map(lambda n: run(sources[n], n), ordered))
            raw_cpus.append(time.process_time() - c0)
            return time.perf_counter() - t0

    raw_passes = [raw_pass()]
    data = tmp / "warm-data"
    data.mkdir()
    for name in names:
        shutil.copyfile(corpus / name, data / name)
    env = {**base_env, **quiet, "IMAGE_ORIGIN_STORAGE_URL": f"file://{data}", "IMAGE_ORIGIN_DERIVED_STORAGE_URL": ""}
    script = Path(sys.executable).parent / "image-origin"
    argv = [str(script) if script.exists() else sys.executable, *(() if script.exists() else ("-m", "origin")), "warm"]
    argv += ["--concurrency", str(concurrency), "--state", str(tmp / "warm-state.json")]
    log_path = tmp / "warm.log"
    children_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log_path, "wb") as log_file:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv, env=env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        warm_wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    warm_cpu = after.ru_utime + after.ru_stime - children_cpu.ru_utime - children_cpu.ru_stime
    text = log_path.read_text(errors="replace")
    match = re.search(
        r"^warm: (\d+) done, (\d+) skipped, (\d+) failed in ([0-9.]+) s \(([0-9.]+) images/s\)", text, re.M
    )
    if code != 0 or not match:
        raise RuntimeError(f"image-origin warm exited {code}:\n{text[-2000:]}")
    warm_done, warm_seconds = int(match.group(1)), float(match.group(4))
    derived = data / "_" / "derived"  # {key}/{variant}; its own `_/` (locks) left out
    stored = sum(1 for name in names if (derived / name).is_dir() for p in (derived / name).iterdir() if p.is_file())
    warm_rate = len(names) / warm_seconds
    warm_wall_rate = len(names) / warm_wall
    raw_passes.append(raw_pass())
    raw_cpu_pass = statistics.mean(raw_cpus)
    raw_seconds = statistics.mean(raw_passes)
    raw_rate = len(names) / raw_seconds

    ratio = warm_rate / raw_rate
    print(
        f"(2) backfill of {len(names)} originals (a local folder of corpus copies), concurrency {concurrency}"
        f" ({os.cpu_count()} CPUs), {expected} variants each:"
    )
    print(
        f"    image-origin warm: {warm_done} done, {stored} variants stored, {warm_seconds:.1f} s by its own"
        f" summary = {warm_rate:.2f} images/s ({warm_wall:.1f} s = {warm_wall_rate:.2f} images/s wall, process"
        f" start included)"
    )
    print(
        f"    raw pyvips, thread pool of {concurrency}, before and after warm: "
        + ", ".join(f"{x:.1f}" for x in raw_passes)
        + f" s, mean {raw_seconds:.1f} s = {raw_rate:.2f} images/s;"
        f" warm/raw = {ratio:.2f} (wall: {warm_wall_rate / raw_rate:.2f})"
    )
    print(f"    CPU: warm {warm_cpu:.1f} s (process start included), raw {raw_cpu_pass:.1f} s a pass")
    print(f"section took {time.perf_counter() - started:.0f} s")

    summary.append(("worker S3->variants p50, p95 ms", f"{fmt_ms(lat[0])}, {fmt_ms(lat[1])}", "info", "-"))
    summary.append(("worker uploads complete, variants", f"{len(ok)}/{len(results)}, {expected}", "info", "-"))
    summary.append(("warm backfill img/s warm vs raw", f"{warm_rate:.2f} vs {raw_rate:.2f}", "info", "-"))
    summary.append(("warm/raw backfill rate", f"{ratio:.2f}", "info", "-"))


# ---------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared" / "corpus"))
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--wrk-seconds", type=int, default=WRK_SECONDS)
    parser.add_argument("--skip-upload", action="store_true", help="leave out the upload throughput section")
    parser.add_argument("--skip-cache", action="store_true", help="leave out the cache-hit and coalescing section")
    parser.add_argument(
        "--skip-worker",
        action="store_true",
        help="leave out the worker section (S3 upload -> warm variants, `image-origin warm` rate)",
    )
    parser.add_argument(
        "--only",
        choices=("render", "cache", "upload", "worker"),
        help="run only the render sections (a-d, wrk, RSS, shrink, AVIF), only the cache-hit and"
        " coalescing section, only the upload section, or only the worker section",
    )
    parser.add_argument(
        "--redis-url",
        default=REDIS_URL,
        help=f"the Redis the cache section uses, under a per-run key prefix (default {REDIS_URL})",
    )
    args = parser.parse_args()
    corpus = Path(args.corpus).resolve()
    names = sorted(p.name for p in corpus.iterdir() if p.suffix in (".jpg", ".png") and class_of(p.name) in CLASSES)
    if not names:
        print(f"no corpus images (L-/M-/S- jpg/png) in {corpus}", file=sys.stderr)
        return 2
    if args.only not in ("upload", "worker") and not Path(args.wrk).exists():
        print(f"wrk not found at {args.wrk}", file=sys.stderr)
        return 2
    names.sort(key=lambda n: (CLASSES.index(class_of(n)), n))
    sources = {n: (corpus / n).read_bytes() for n in names}

    harden()  # the same loaders, operation cache and malloc arenas as the server
    started = time.monotonic()
    print(
        f"image-origin bench: {len(names)} images from {corpus}; w={WIDTH}; libvips "
        f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}; {os.cpu_count()} CPUs; "
        f"VIPS_CONCURRENCY={os.environ.get('VIPS_CONCURRENCY', 'default')}"
    )
    load_start = os.getloadavg()[0]
    if load_start > 0.5:
        print(f"warning: 1-min load average is {load_start:.2f} before the bench; other work shares the CPUs")

    summary: list[tuple[str, str, str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="origin-bench-"))
    try:
        if args.only in (None, "render"):
            bench_render(args, names, sources, corpus, tmp, summary)
        if args.only == "cache" or (args.only is None and not args.skip_cache):
            bench_cache(args, names, sources, corpus, tmp, summary)
        if args.only == "upload" or (args.only is None and not args.skip_upload):
            bench_upload(names, sources, tmp, summary)
        if args.only == "worker" or (args.only is None and not args.skip_worker):
            bench_worker(names, sources, corpus, tmp, summary)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    section("summary")
    print(f"{'metric':34} {'value':>16} {'target':>9} {'':>5}")
    for metric, value, target, result in summary:
        print(f"{metric:34} {value:>16} {target:>9} {result:>5}")
    print(
        f"total bench time {time.monotonic() - started:.0f} s; 1-min load average before the bench {load_start:.2f}"
        f" (on {os.cpu_count()} CPUs, other work running alongside skews every figure)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
