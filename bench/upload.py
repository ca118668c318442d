"""Upload section: management API POST throughput, local folder and S3 (moto), each against its raw write."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from bench.common import MB, S3_REGION, Run, Server, aws_test_env, content_type, patched_environ, section, start_origin
from origin.render import RenderGuard
from origin.render.validate import validate
from origin.settings import defaults

# Uploads: corpus passes per (backend, concurrency): at least MIN, then stop once past the budget (s), at most MAX.
UPLOAD_CONCURRENCY = (1, 4)
UPLOAD_MIN_PASSES, UPLOAD_MAX_PASSES, UPLOAD_BUDGET = 2, 3, 5.0
UPLOAD_FOLDER = "bench-upload"
S3_PREFIX = "origin/bench"


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
    config = defaults().render
    for name in names:  # warm-up: loaders
        if name.startswith("S-"):
            validate(sources[name], config, RenderGuard())

    def run() -> float:
        t0 = time.perf_counter()
        for name in names:
            validate(sources[name], config, RenderGuard())
        return time.perf_counter() - t0

    return run


def run(ctx: Run) -> None:
    """Upload throughput over HTTP (management API) on the local folder and on S3 (moto on
    loopback, in this process), each against its raw floor; appends summary rows."""
    names, sources, tmp, summary = ctx.names, ctx.sources, ctx.tmp, ctx.summary
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
