"""Peers section: the origin against thumbor on the same images and URLs, and cold throughput.

thumbor (7.8, PIL engine) is installed by this section into a venv of its own under
`bench/out/thumbor-venv` (never a project dependency), and runs as one process with the
file loader on a copy of the corpus, no storage and no result storage, so every request
decodes, resizes and encodes. Both servers are asked for the same thing: 500 px wide,
WebP at quality 80 (origin `/<name>?w=500&fm=webp&q=80`, thumbor
`/unsafe/500x0/filters:format(webp):quality(80)/<name>`).

(1) Per image, sequential keep-alive requests to the origin (variant cache off) and to
thumbor, interleaved with the in-process floor (the faster of libvips `thumbnail_buffer` +
the same WebP encode and the origin's own `render()`, both timed here): origin/thumbor per
class of the corpus.
(2) Cold throughput at concurrency 8 with wrk: every request a new variant (a Lua script
walks the corpus and steps the width 400-599, so no URL repeats within a run), origin
and thumbor taking turns, peak RSS of each server during its runs; set against the
floor's throughput limit, cores / the mean in-process time of the same mix (each image at
four widths across 400-599, the faster of the two in-process paths), measured in this run,
with each server's CPU time per request and the cores it kept busy.
With `--baseline REF`, the origin as of git REF runs beside the current one in both parts
(its tree exported with `git archive` into the temp folder, run on this venv), so a change
is measured before and after in one run.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pyvips

from bench.common import (
    CLASSES,
    REPO,
    WIDTH,
    WRK_DONE,
    Client,
    Run,
    Server,
    class_of,
    fmt_ms,
    free_port,
    paired,
    proc_cpu_seconds,
    proc_status_kib,
    reset_hwm,
    run_wrk,
    section,
    start_origin,
    verdict,
)
from origin.formats import Accepts
from origin.params import parse_query
from origin.render import RenderGuard, render
from origin.settings import defaults

THUMBOR_VERSION = "7.8.0"
THUMBOR_VENV = REPO / "bench" / "out" / "thumbor-venv"
QUALITY = 80
REPS, BUDGET = 12, 8.0  # per image: 12 rounds (8 s at most), a median stable to a few percent
WRK_CONNECTIONS = 8
WRK_ROUNDS = 2  # each server WRK_ROUNDS x --wrk-seconds, taking turns
WIDTHS = (400, 600)  # wrk steps w over [400, 600) so every request is a new variant
MIX_WIDTHS = range(WIDTHS[0] + 25, WIDTHS[1], 50)  # 425, 475, 525, 575: the floor of that mix
PEER_TARGET = 1.0
THROUGHPUT_TARGET = 0.95
P99_TARGET_MS = 800.0
RSS_TARGET_MIB = 300.0


def origin_path(name: str, width: int | str = WIDTH) -> str:
    return f"/{name}?w={width}&fm=webp&q={QUALITY}"


def thumbor_path(name: str, width: int | str = WIDTH) -> str:
    return f"/unsafe/{width}x0/filters:format(webp):quality({QUALITY})/{name}"


def ensure_thumbor() -> Path:
    """The thumbor executable in the bench's own venv, installed on first use (pip, ~1 min)."""
    exe = THUMBOR_VENV / "bin" / "thumbor"
    if not exe.exists():
        print(f"installing thumbor {THUMBOR_VERSION} into {THUMBOR_VENV} (first run only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(THUMBOR_VENV)], check=True)
        pip = [str(THUMBOR_VENV / "bin" / "pip"), "install", "-q", f"thumbor=={THUMBOR_VERSION}"]
        subprocess.run(pip, check=True)
    return exe


def thumbor_libraries() -> str:
    """thumbor's Pillow and libjpeg versions, as its own venv reports them."""
    code = (
        "import PIL, PIL.features as f; print(f'Pillow {PIL.__version__}, libjpeg-turbo '"
        " + str(f.version('libjpeg_turbo')) + ', libwebp ' + str(f.version('webp')))"
    )
    out = subprocess.run([str(THUMBOR_VENV / "bin" / "python"), "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip()[-200:]


def start_thumbor(exe: Path, storage: Path, tmp: Path) -> Server:
    conf = tmp / "thumbor.conf"
    conf.write_text(
        "\n".join(
            [
                "LOADER = 'thumbor.loaders.file_loader'",
                f"FILE_LOADER_ROOT_PATH = {str(storage)!r}",
                "STORAGE = 'thumbor.storages.no_storage'",
                "RESULT_STORAGE = None",
                "ENGINE = 'thumbor.engines.pil'",
                "ALLOW_UNSAFE_URL = True",
                f"QUALITY = {QUALITY}",
                f"WEBP_QUALITY = {QUALITY}",
                "AUTO_WEBP = False",
                "RESPECT_ORIENTATION = True",
                "PRESERVE_EXIF_INFO = False",
                "MAX_AGE = 0",
                "",
            ]
        )
    )
    port = free_port()
    argv = [str(exe), "--ip", "127.0.0.1", "--port", str(port), "--conf", str(conf), "--log-level", "error"]
    server = Server("thumbor", argv, dict(os.environ), port, tmp / "thumbor.log", tmp)
    return server


def start_baseline(ref: str, storage: Path, tmp: Path) -> Server:
    """The origin as of git `ref`, on this venv: its tree exported into `tmp`, first on PYTHONPATH."""
    tree = tmp / "baseline-tree"
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    print(f"baseline: the origin at {ref} ({_describe(ref)}), from {tree}")
    # `python -m origin`, the tree's own entry point: this venv's `image-origin` script imports
    # today's entry module, which an older tree may not have.
    command = [sys.executable, "-m", "origin"]
    return start_origin("peers-baseline", storage, 0, tmp, cwd=tree, command=command, PYTHONPATH=str(tree))


def _describe(ref: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s", ref], capture_output=True, text=True)
    return out.stdout.strip()[:90]


class Getter:
    """Sequential GETs of one server's URL for an image; checks 200 + WebP, keeps the output size
    and the server process's CPU time per request (/proc, 10 ms ticks: a median over the reps)."""

    def __init__(self, server: Server, path_of) -> None:  # type: ignore[no-untyped-def]
        self.client, self.path_of, self.pid = Client(server.port), path_of, server.pid
        self.dims: dict[str, tuple[int, int]] = {}
        self.cpu: dict[str, list[float]] = {}

    def cpu_ms(self, name: str) -> float:
        return statistics.mean(self.cpu[name][1:]) * 1000  # the first is the warm-up

    def __call__(self, name: str) -> None:
        path = self.path_of(name)
        before = proc_cpu_seconds(self.pid)
        status, _, body = self.client.get(path)
        self.cpu.setdefault(name, []).append(proc_cpu_seconds(self.pid) - before)
        if status != 200 or body[8:12] != b"WEBP":
            raise RuntimeError(f"GET {path} -> {status}, {body[:80]!r}")
        if name not in self.dims:
            image = pyvips.Image.new_from_buffer(body, "")
            self.dims[name] = (image.width, image.height)


def floor_work(data: bytes, width: int = WIDTH):  # type: ignore[no-untyped-def]
    """libvips' own fastest path in-process: its thumbnail + the same WebP encode."""
    return lambda: pyvips.Image.thumbnail_buffer(data, width, height=10_000_000).webpsave_buffer(
        Q=QUALITY, effort=4, keep="none"
    )


def render_work(data: bytes, width: int = WIDTH):  # type: ignore[no-untyped-def]
    """The origin's render of the same URL in-process, with no server around it."""
    spec = parse_query([("w", str(width)), ("fm", "webp"), ("q", str(QUALITY))], defaults().output)
    config = defaults().render
    return lambda: render(data, spec, Accepts.LEGACY, config, None, RenderGuard()).body


def mix_floor_ms(sources: dict[str, bytes], names: list[str]) -> float:
    """The mean in-process time of the cold runs' mix: per image, over MIX_WIDTHS spread across the
    widths wrk asks for, the faster of the two paths (best of two calls each). Shrink-on-load makes
    the width matter: a width the 1/8 decode no longer covers costs 2-3x one it does."""
    per_image = []
    for name in names:
        times = []
        for width in MIX_WIDTHS:
            calls = [floor_work(sources[name], width), render_work(sources[name], width)]
            times.append(min(_wall_ms(call) for call in calls for _ in range(2)))
        per_image.append(statistics.mean(times))
    return statistics.mean(per_image)


def _wall_ms(call) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


WRK_LUA = (
    """
local names = {%s}
local pattern = "%s"
local n = #names
local low, span, offset = %d, %d, %d
local i = 0
request = function()
  local name = names[i %% n + 1]
  local width = low + (math.floor(i / n) + offset) %% span
  i = i + 1
  local path = pattern:gsub("{w}", tostring(width)):gsub("{name}", name)
  return wrk.format("GET", path)
end
"""
    + WRK_DONE
)
PATTERNS = {
    "origin": origin_path("{name}", "{w}"),
    "before": origin_path("{name}", "{w}"),
    "thumbor": thumbor_path("{name}", "{w}"),
}


def write_cold_script(names: list[str], pattern: str, offset: int, path: Path) -> Path:
    """A wrk script whose every request is a new variant: image i mod n at width low + (i div n + offset) mod span."""
    quoted = ", ".join(f'"{name}"' for name in names)
    low, high = WIDTHS
    path.write_text(WRK_LUA % (quoted, pattern, low, high - low, offset))
    return path


def cold_runs(args, names: list[str], servers: dict[str, Server], tmp: Path) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """WRK_ROUNDS wrk runs per server, taking turns; each round starts at a new width offset so
    no URL is asked twice of one server. Peak RSS (VmHWM reset before each run) per server."""
    results: dict[str, list[dict[str, float]]] = {label: [] for label in servers}
    peaks: dict[str, float] = dict.fromkeys(servers, 0.0)
    round_span = max(1, (WIDTHS[1] - WIDTHS[0]) // WRK_ROUNDS)
    for round_index in range(WRK_ROUNDS):
        order = list(servers.items())
        for label, server in order[::-1] if round_index % 2 else order:
            script = write_cold_script(names, PATTERNS[label], round_index * round_span, tmp / f"cold-{label}.lua")
            reset_hwm(server.pid)
            cpu_before = proc_cpu_seconds(server.pid)
            result = run_wrk(args.wrk, server.port, script, WRK_CONNECTIONS, args.wrk_seconds)
            result["cpu_s"] = proc_cpu_seconds(server.pid) - cpu_before
            peaks[label] = max(peaks[label], (proc_status_kib(server.pid, "VmHWM") or 0) / 1024)
            results[label].append(result)
    merged = {}
    for label, runs in results.items():
        total = {k: sum(r[k] for r in runs) for k in ("requests", "duration_us", "errors", "cpu_s")}
        merged[label] = {
            **total,
            "rps": total["requests"] / (total["duration_us"] / 1e6),
            "cpu_ms": total["cpu_s"] * 1000 / max(total["requests"], 1),
            "cores": total["cpu_s"] / (total["duration_us"] / 1e6),
            "p50_us": statistics.mean(r["p50_us"] for r in runs),
            "p99_us": max(r["p99_us"] for r in runs),
            "peak_mib": peaks[label],
            "round_rps": [r["rps"] for r in runs],
        }
    return merged


def run(ctx: Run) -> None:
    """origin/thumbor per class, sequential and interleaved; cold throughput at c=8 vs the floor."""
    args, names, sources, corpus, tmp, summary = ctx.args, ctx.names, ctx.sources, ctx.corpus, ctx.tmp, ctx.summary
    baseline = getattr(args, "baseline", None)
    exe = ensure_thumbor()
    section(f"peers: origin vs thumbor {THUMBOR_VERSION} (one process, PIL engine), {WIDTH} px WebP q{QUALITY}")
    print(f"thumbor's libraries: {thumbor_libraries()}; origin: libvips {pyvips.version(0)}.{pyvips.version(1)}")
    load = os.getloadavg()
    print(f"load average at the start of the section: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    storage = tmp / "peers-storage"
    storage.mkdir()
    for name in names:
        shutil.copyfile(corpus / name, storage / name)
    servers: dict[str, Server] = {}
    try:
        servers["origin"] = start_origin("peers-origin", storage, 0, tmp)
        if baseline:
            servers["before"] = start_baseline(baseline, storage, tmp)
        servers["thumbor"] = start_thumbor(exe, storage, tmp)
        for label, server in servers.items():
            server.wait_ready("/healthcheck" if label == "thumbor" else "/_/health")

        getters = {
            label: Getter(server, thumbor_path if label == "thumbor" else origin_path)
            for label, server in servers.items()
        }
        labels = list(getters)
        floor_ms: dict[str, float] = {}
        wall: dict[str, dict[str, float]] = {label: {} for label in labels}
        for name in names:
            timed = paired(
                [floor_work(sources[name]), render_work(sources[name])]
                + [lambda g=getter, n=name: g(n) for getter in getters.values()],
                REPS,
                BUDGET,
            )
            floor_ms[name] = min(timed[:2])  # the fastest single-image path: libvips' or the origin's own
            for label, ms in zip(labels, timed[2:], strict=True):
                wall[label][name] = ms
        origin_ms, thumbor_ms = wall["origin"], wall["thumbor"]
        origin_get, thumbor_get = getters["origin"], getters["thumbor"]
        print(
            f"{'image':28} {'floor ms':>8} {'origin':>8} {'thumbor':>8} {'o/t':>6} {'o/floor':>7}"
            f" {'cpu o':>6} {'cpu t':>6} {'cpu o/t':>7}"
            + (f" {'before':>7} {'b/t':>5} {'cpu b':>6} {'cpu b/t':>7}" if baseline else "")
            + "  out size o, t"
        )
        for name in names:
            sizes = f"{origin_get.dims[name][0]}x{origin_get.dims[name][1]}, {thumbor_get.dims[name][0]}x{thumbor_get.dims[name][1]}"
            extra = ""
            if baseline:
                b_get = getters["before"]
                extra = (
                    f" {fmt_ms(wall['before'][name]):>7} {wall['before'][name] / thumbor_ms[name]:>5.2f}"
                    f" {b_get.cpu_ms(name):>6.0f} {b_get.cpu_ms(name) / max(thumbor_get.cpu_ms(name), 1):>7.2f}"
                )
            print(
                f"{name:28} {fmt_ms(floor_ms[name]):>8} {fmt_ms(origin_ms[name]):>8} {fmt_ms(thumbor_ms[name]):>8}"
                f" {origin_ms[name] / thumbor_ms[name]:>6.2f} {origin_ms[name] / floor_ms[name]:>7.2f}"
                f" {origin_get.cpu_ms(name):>6.0f} {thumbor_get.cpu_ms(name):>6.0f}"
                f" {origin_get.cpu_ms(name) / max(thumbor_get.cpu_ms(name), 1):>7.2f}{extra}  {sizes}"
            )
        print(
            "per class: median of per-image ratios; wall = client time (keep-alive, one request at a time),"
            " cpu = the server process's CPU time per request (what a loaded, shared machine leaves comparable)"
        )
        per_class: dict[str, dict[str, tuple[float, float]]] = {label: {} for label in labels if label != "thumbor"}
        for cls in CLASSES:
            members = [n for n in names if class_of(n) == cls]
            if not members:
                continue
            t_cpu = max(statistics.mean(thumbor_get.cpu_ms(n) for n in members), 1e-3)
            parts = []
            for label in per_class:
                ratio = statistics.median(wall[label][n] / thumbor_ms[n] for n in members)
                cpu = statistics.mean(getters[label].cpu_ms(n) for n in members) / t_cpu
                per_class[label][cls] = (ratio, cpu)
                parts.append(f"{label}/thumbor wall {ratio:.2f}, cpu {cpu:.2f}")
            print(f"  {cls:6} n={len(members)}  " + "; ".join(parts) + " (cpu: mean CPU ms over the class)")

        section(f"cold throughput, wrk c={WRK_CONNECTIONS}, every request a new variant (w 400-599), corpus mix")
        results = cold_runs(args, names, servers, tmp)
        cores = os.cpu_count() or 1
        mix_ms = mix_floor_ms(sources, names)
        floor_rps = cores * 1000 / mix_ms
        print(
            f"floor: {cores} cores / mean in-process time of the mix ({mix_ms:.0f} ms: per image, the faster path"
            f" at w={', '.join(map(str, MIX_WIDTHS))}) = {floor_rps:.1f} req/s"
        )
        print(
            f"{'server':8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'peak RSS MiB':>12} {'vs floor':>8}"
            f" {'cpu ms/req':>10} {'cores busy':>10}"
        )
        for label, r in results.items():
            print(
                f"{label:8} {r['rps']:>7.1f} {r['p50_us'] / 1000:>7.0f} {r['p99_us'] / 1000:>7.0f}"
                f" {int(r['errors']):>6} {r['peak_mib']:>12.0f} {r['rps'] / floor_rps:>8.2f}"
                f" {r['cpu_ms']:>10.0f} {r['cores']:>10.2f}"
                f"  (rounds {', '.join(f'{x:.1f}' for x in r['round_rps'])})"
            )
        load = os.getloadavg()
        print(f"load average at the end of the section: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    finally:
        for server in reversed(list(servers.values())):
            server.stop()

    for label, classes in per_class.items():
        for cls, (ratio, cpu) in classes.items():
            target = f"< {PEER_TARGET:.2f}" if label == "origin" else "info"
            summary.append(
                (
                    f"{label}/thumbor {cls} wall",
                    f"{ratio:.2f}",
                    target,
                    verdict(ratio < PEER_TARGET) if label == "origin" else "-",
                )
            )
            summary.append(
                (
                    f"{label}/thumbor {cls} cpu",
                    f"{cpu:.2f}",
                    target,
                    verdict(cpu < PEER_TARGET) if label == "origin" else "-",
                )
            )
    o, t = results["origin"], results["thumbor"]
    share = o["rps"] / floor_rps
    summary.append(
        ("cold c=8 req/s origin, thumbor, floor", f"{o['rps']:.1f}, {t['rps']:.1f}, {floor_rps:.1f}", "info", "-")
    )
    if "before" in results:
        b = results["before"]
        summary.append(
            (
                "cold c=8 before: req/s, /floor, p99, MiB",
                f"{b['rps']:.1f}, {b['rps'] / floor_rps:.2f}, {b['p99_us'] / 1000:.0f}, {b['peak_mib']:.0f}",
                "info",
                "-",
            )
        )
    summary.append(
        ("cold c=8 origin/floor", f"{share:.2f}", f">= {THROUGHPUT_TARGET}", verdict(share >= THROUGHPUT_TARGET))
    )
    summary.append(
        (
            "cold c=8 origin p99 ms",
            f"{o['p99_us'] / 1000:.0f}",
            f"< {P99_TARGET_MS:.0f}",
            verdict(o["p99_us"] / 1000 < P99_TARGET_MS),
        )
    )
    summary.append(
        (
            "cold c=8 origin peak RSS MiB",
            f"{o['peak_mib']:.0f}",
            f"<= {RSS_TARGET_MIB:.0f}",
            verdict(o["peak_mib"] <= RSS_TARGET_MIB),
        )
    )
    summary.append(("cold c=8 thumbor peak RSS MiB", f"{t['peak_mib']:.0f}", "info", "-"))
