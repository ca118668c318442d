"""Worker section: S3 upload -> warm variants (SQS, moto, a worker subprocess); `image-origin warm` rate."""

from __future__ import annotations

import logging
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyvips

from bench.common import (
    READY_TIMEOUT,
    REPO,
    S3_REGION,
    Run,
    Server,
    aws_test_env,
    content_type,
    fmt_ms,
    origin_settings,
    patched_environ,
    percentile,
    proc_cpu_seconds,
    section,
)
from origin.params import parse_query

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
    from origin.render.encode import encode

    configs = settings.configs()
    config = configs.render
    plans = []
    for params in WORKER_PRESETS.values():
        spec = parse_query([(k, str(v)) for k, v in params.items()], configs.output)
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


def run(ctx: Run) -> None:
    """(1) S3 upload -> warm variants readable, through SQS and a worker subprocess (moto on loopback);
    (2) `image-origin warm` backfill rate against raw pyvips with the same concurrency. Summary rows (info)."""
    names, sources, corpus, tmp, summary = ctx.names, ctx.sources, ctx.corpus, ctx.tmp, ctx.summary
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
