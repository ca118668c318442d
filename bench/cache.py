"""Cache section: memory and Redis hits against the bare floor (wrk), coalescing of cold bursts."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import statistics
import time
from collections import Counter

import aiohttp

from bench.common import (
    HIT_RATIO_TARGET,
    QUERY,
    Client,
    Fetcher,
    Run,
    Server,
    health_renders,
    origin_settings,
    percentile,
    renders_total,
    run_wrk,
    section,
    server_timing,
    start_bare,
    start_origin,
    verdict,
    write_wrk_script,
)

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
REDIS_RATIO_TARGET = 0.35
COALESCE_P99_TARGET = 1.3


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
            answers = await asyncio.gather(*(get(port, "/_/metrics") for port in ports))
            return sum(renders_total(answer[3].decode()) for answer in answers)

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


def run(ctx: Run) -> None:
    """Memory-hit and Redis-hit throughput against the bare floor (wrk), then coalescing of one cold
    burst (one process without Redis; two processes sharing Redis); appends summary rows. Redis
    keys live under a per-run prefix and are deleted at the end (nothing else is touched)."""
    args, names, sources, corpus, tmp, summary = ctx.args, ctx.names, ctx.sources, ctx.corpus, ctx.tmp, ctx.summary
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
        mem_get = Fetcher(mem.port, None)
        bare = start_bare(mem_get, hit_names, bodies, tmp)
        servers.append(bare)
        mem_get.expect_cache = "memory"
        for name in hit_names:
            mem_get(name)
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
