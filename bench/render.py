"""Render sections: a-d (floor, cold miss, hit, bare), wrk throughput, RSS, shrink-on-load, AVIF."""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Callable
from pathlib import Path

import pyvips

from bench.common import (
    CLASSES,
    HIT_RATIO_TARGET,
    WIDTH,
    Fetcher,
    RssPoller,
    Run,
    Server,
    class_of,
    floor_encode,
    fmt_ms,
    geomean,
    paired,
    paired_cpu,
    proc_status_kib,
    reset_hwm,
    run_wrk,
    section,
    start_bare,
    start_origin,
    verdict,
    write_wrk_script,
)
from origin.formats import Accepts
from origin.params import parse_query
from origin.render import RenderGuard, render
from origin.settings import defaults

# Bounds: repetitions and seconds per measured item (each loop stops at whichever comes first).
COLD_REPS, COLD_BUDGET = 5, 6.0
HIT_REPS, HIT_BUDGET = 60, 1.5
SHRINK_REPS, SHRINK_BUDGET = 5, 5.0
AVIF_REPS, AVIF_BUDGET = 3, 8.0
AVIF_EFFORTS = (0, 1, 2, 3, 4)
AVIF_IMAGES = ("L-jpg-bridge.jpg", "M-jpg-cups.jpg", "M-png-gulp-alpha.png", "S-png-astronaut.png")

# Targets.
RSS_TARGET_MIB = 300.0
AVIF_TIME_TARGET = 3.0


def floor_work(data: bytes, name: str) -> Callable[[], bytes]:
    fmt = "jpg" if name.endswith(".jpg") else "png"
    return lambda: floor_encode(pyvips.Image.thumbnail_buffer(data, WIDTH, height=10_000_000), fmt)


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
    spec = parse_query([("w", str(WIDTH))], defaults().output)
    config = defaults().render
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


def run(ctx: Run) -> None:
    """Sections a-d, wrk, RSS, shrink-on-load and AVIF; appends their summary rows."""
    args, names, sources, corpus, tmp, summary = ctx.args, ctx.names, ctx.sources, ctx.corpus, ctx.tmp, ctx.summary
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
        hit_get = Fetcher(hit.port, None)
        bare = start_bare(hit_get, names, tmp / "bodies", tmp)
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
        default_effort = defaults().render.avif_effort

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
