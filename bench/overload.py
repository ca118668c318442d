"""Overload: the origin's memory and liveness under issue 8's three attacks, on its defaults.

    .venv/bin/python -m bench.overload [CORPUS_DIR] [--seconds 20]
    .venv/bin/python -m bench --only overload

Starts the real server (a subprocess, default settings, a data folder with copies of the
corpus), then, one after the other:
  a. 64 concurrent cold renders of the corpus's largest images (every request a new variant: w 101-2000, then the next q);
  b. 64 slow readers of the largest originals (each reads 64 KiB every 100 ms);
  c. 1,500 connections sending their headers a byte a second, while a normal client keeps
     asking for a small image and for /_/health.
For each: peak RSS of the server (VmRSS sampled every 50 ms, and the kernel's VmHWM), RSS
after 10 s of idle, the 200/503 counts (and whether every 503 had Retry-After), whether
/_/health answered throughout, and how many bytes the server's log grew by. Targets
(issue 8): peak <= 400 MiB, idle <= 150 MiB within 10 s. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.common import REPO, RssPoller, Run, proc_status_kib, reset_hwm, section, start_origin, verdict

MiB = 1024 * 1024
PEAK_TARGET = 400 * MiB
IDLE_TARGET = 150 * MiB
CONCURRENCY = 64
TRICKLERS = 1500
LARGEST = 4
"""How many of the corpus's largest images the attacks use."""


@dataclass
class Tally:
    statuses: dict[int, int] = field(default_factory=dict)
    retry_after_missing: int = 0
    errors: int = 0

    def add(self, status: int, headers: aiohttp.typedefs.LooseHeaders | None = None) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 503 and headers is not None and "Retry-After" not in headers:  # type: ignore[operator]
            self.retry_after_missing += 1

    def text(self) -> str:
        parts = [f"{status}: {count}" for status, count in sorted(self.statuses.items())]
        if self.errors:
            parts.append(f"connection errors: {self.errors}")
        if self.statuses.get(503):
            parts.append("every 503 with Retry-After" if not self.retry_after_missing else "503 WITHOUT Retry-After")
        return ", ".join(parts) or "nothing"


@dataclass
class Health:
    asked: int = 0
    answered: int = 0
    slowest: float = 0.0


async def watch_health(session: aiohttp.ClientSession, base: str, health: Health, stop: asyncio.Event) -> None:
    """/_/health every 200 ms with a 2 s deadline: 'answered throughout' means every one answered 200."""
    while not stop.is_set():
        started = time.monotonic()
        health.asked += 1
        try:
            async with asyncio.timeout(2):
                async with session.get(f"{base}/_/health") as resp:
                    await resp.read()
                    health.answered += resp.status == 200
        except (TimeoutError, aiohttp.ClientError):
            pass
        health.slowest = max(health.slowest, time.monotonic() - started)
        await asyncio.sleep(0.2)


async def cold_renders(base: str, names: list[str], seconds: float, tally: Tally) -> None:
    # Every request a new variant within the limits: w 101-2000 then the next q (an endless w would
    # pass max_output_side, where widths clamp to one cached variant, and then w's own bound: 400s).
    variants = (f"w={101 + n % 1900}&q={50 + n // 1900 % 45}" for n in itertools.count())
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one_client(i: int) -> None:
            while time.monotonic() < deadline:
                name = names[i % len(names)]
                try:
                    async with session.get(f"{base}/{name}?{next(variants)}&fm=webp") as resp:
                        await resp.read()
                        tally.add(resp.status, resp.headers)
                except (TimeoutError, aiohttp.ClientError):
                    tally.errors += 1
                    await asyncio.sleep(0.1)

        await asyncio.gather(*(one_client(i) for i in range(CONCURRENCY)))


async def slow_readers(base: str, names: list[str], seconds: float, tally: Tally) -> None:
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=CONCURRENCY, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, read_bufsize=65536) as session:

        async def one_reader(i: int) -> None:
            while time.monotonic() < deadline:
                try:
                    async with session.get(f"{base}/{names[i % len(names)]}") as resp:
                        tally.add(resp.status, resp.headers)
                        while time.monotonic() < deadline and await resp.content.read(65536):
                            await asyncio.sleep(0.1)
                        if resp.status != 200:
                            await asyncio.sleep(0.5)
                except (TimeoutError, aiohttp.ClientError):
                    tally.errors += 1
                    await asyncio.sleep(0.1)

        await asyncio.gather(*(one_reader(i) for i in range(CONCURRENCY)))


async def tricklers(port: int, base: str, small: str, seconds: float, tally: Tally) -> dict[str, float]:
    """TRICKLERS connections sending headers a byte a second (reconnecting when cut), while a
    normal client asks for `small` back to back; returns what the normal client saw."""
    deadline = time.monotonic() + seconds
    cut = 0

    async def trickle() -> None:
        nonlocal cut
        while time.monotonic() < deadline:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                tally.errors += 1
                await asyncio.sleep(1)
                continue
            try:
                writer.write(b"GET /x HTTP/1.1\r\n")
                while time.monotonic() < deadline:
                    writer.write(b"a")
                    await writer.drain()
                    try:
                        async with asyncio.timeout(1):
                            if await reader.read(1024) == b"":
                                cut += 1
                                break
                    except TimeoutError:
                        pass
            except OSError:
                cut += 1
            finally:
                writer.close()

    normal = Tally()
    latencies: list[float] = []

    async def normal_client() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    async with session.get(f"{base}/{small}?w=100") as resp:
                        await resp.read()
                        normal.add(resp.status)
                except (TimeoutError, aiohttp.ClientError):
                    normal.errors += 1
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.05)

    tasks = [asyncio.ensure_future(trickle()) for _ in range(TRICKLERS)]
    await normal_client()
    await asyncio.gather(*tasks)
    latencies.sort()
    return {
        "normal_ok": normal.statuses.get(200, 0),
        "normal_failed": sum(n for s, n in normal.statuses.items() if s != 200) + normal.errors,
        "normal_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0.0,
        "cut": cut,
    }


async def attack(kind: str, server_port: int, pid: int, log: Path, names: list[str], seconds: float) -> dict[str, str]:
    base = f"http://127.0.0.1:{server_port}"
    reset_hwm(pid)
    poller = RssPoller(pid)
    poller.start()
    log_before = log.stat().st_size
    tally, health, stop = Tally(), Health(), asyncio.Event()
    extra = ""
    async with aiohttp.ClientSession() as session:
        watcher = asyncio.ensure_future(watch_health(session, base, health, stop))
        started = time.monotonic()
        if kind == "cold renders":
            await cold_renders(base, names, seconds, tally)
        elif kind == "slow readers":
            await slow_readers(base, names[:LARGEST], seconds, tally)
        else:
            seen = await tricklers(server_port, base, names[-1], seconds, tally)
            extra = (
                f"normal client: {seen['normal_ok']:.0f} ok, {seen['normal_failed']:.0f} failed, "
                f"p99 {seen['normal_p99_ms']:.0f} ms; {seen['cut']:.0f} trickling connections cut"
            )
        elapsed = time.monotonic() - started
        peak = max(poller.stop() * 1024, (proc_status_kib(pid, "VmHWM") or 0) * 1024)
        idle_started = time.monotonic()
        idle = peak
        while time.monotonic() - idle_started < 10:  # the lowest RSS within 10 s of idle
            await asyncio.sleep(0.5)
            idle = min(idle, (proc_status_kib(pid, "VmRSS") or 0) * 1024)
        stop.set()
        await watcher
    return {
        "attack": kind,
        "seconds": f"{elapsed:.0f}",
        "peak": f"{peak / MiB:.0f} MiB {verdict(peak <= PEAK_TARGET)}",
        "idle": f"{idle / MiB:.0f} MiB {verdict(idle <= IDLE_TARGET)}",
        "responses": tally.text(),
        "health": f"{health.answered}/{health.asked} answered, slowest {health.slowest * 1000:.0f} ms",
        "log": f"+{log.stat().st_size - log_before} bytes" + _last_line(log, log_before),
        "extra": extra,
    }


def _last_line(log: Path, since: int) -> str:
    """What the log grew with, by its last line (so a figure says what it is made of)."""
    with open(log, "rb") as f:
        f.seek(since)
        lines = f.read().decode(errors="replace").splitlines()
    return f" ({len(lines)} lines; last: {lines[-1][:160]!r})" if lines else ""


ATTACKS = ("cold renders", "slow readers", "trickling connections")


def measure(corpus: Path, tmp: Path, seconds: float, attacks: tuple[str, ...] = ATTACKS) -> list[dict[str, str]]:
    images = sorted((p for p in corpus.iterdir() if p.suffix in (".jpg", ".png")), key=lambda p: -p.stat().st_size)
    if not images:
        raise SystemExit(f"no corpus images in {corpus}")
    data = tmp / "data"
    data.mkdir()
    for image in images:
        shutil.copy(image, data / image.name)
    largest = [image.name for image in images[:LARGEST]]
    names = largest + [images[-1].name]  # the smallest last: the normal client's image
    server = start_origin("overload", data, 128 * MiB, tmp)
    try:
        server.wait_ready()
        rows = []
        for kind in attacks:
            rows.append(asyncio.run(attack(kind, server.port, server.pid, server.log, names, seconds)))
            print_row(rows[-1])
        return rows
    finally:
        server.stop()


def print_row(row: dict[str, str]) -> None:
    print(f"\n{row['attack']} ({row['seconds']} s)")
    for key in ("peak", "idle", "responses", "health", "log", "extra"):
        if row[key]:
            print(f"  {key:10} {row[key]}")


def run(ctx: Run) -> None:
    """The `overload` section of `python -m bench`."""
    section("overload: 64 cold renders, 64 slow readers, 1,500 trickling connections (~2 min)")
    tmp = ctx.tmp / "overload"
    tmp.mkdir()
    for row in measure(ctx.corpus, tmp, 20):
        ctx.summary.append(
            (
                f"overload {row['attack']} peak RSS",
                row["peak"].split(" MiB")[0] + " MiB",
                "400 MiB",
                row["peak"].split()[-1],
            )
        )
        ctx.summary.append(
            (
                f"overload {row['attack']} idle RSS",
                row["idle"].split(" MiB")[0] + " MiB",
                "150 MiB",
                row["idle"].split()[-1],
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared" / "corpus"))
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each attack (default 20)")
    parser.add_argument(
        "--attacks", default="all", help="comma-separated: cold,slow,trickle (default all, in that order)"
    )
    args = parser.parse_args(argv)
    chosen = (
        ATTACKS
        if args.attacks == "all"
        else tuple(kind for kind in ATTACKS if kind.split()[0][:4] in [a.strip()[:4] for a in args.attacks.split(",")])
    )
    tmp = Path(tempfile.mkdtemp(prefix="origin-overload-"))
    try:
        measure(Path(args.corpus).resolve(), tmp, args.seconds, chosen)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
