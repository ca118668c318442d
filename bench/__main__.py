"""Benchmark: the origin against its floors, one section at a time or all in one run.

    .venv/bin/python -m bench [CORPUS_DIR]             (default: ../shared/corpus next to the repo)
    .venv/bin/python -m bench --only cache,upload      (those sections alone, in the registry's order)
    .venv/bin/python -m bench --skip worker            (every section but those)

Each section is a module of this package with a `run(ctx: bench.common.Run)` that prints its
tables and appends rows to the summary; `SECTIONS` below is the registry and the run order.
After the sections, one PASS/MISS summary. Only 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyvips

from bench import cache, faces, memory, overload, render, thumbor, upload, worker
from bench.common import CLASSES, REDIS_URL, REPO, WIDTH, WRK_SECONDS, Run, class_of, section
from origin.launch import relaunch
from origin.render import harden


@dataclass(frozen=True)
class Section:
    run: Callable[[Run], None]
    needs_wrk: bool
    about: str


SECTIONS: dict[str, Section] = {
    "render": Section(render.run, True, "a-d latency per image, wrk cold/hit throughput, peak RSS, shrink, AVIF"),
    "cache": Section(cache.run, True, "memory and Redis hits vs bare (wrk), coalescing of cold bursts (~45 s)"),
    "thumbor": Section(thumbor.run, True, "origin/thumbor per class (same URLs, interleaved), cold c=8 vs floor, RSS"),
    "memory": Section(
        memory.run, False, "peak memory of one render per image (fresh process) vs the budget's estimate"
    ),
    "upload": Section(upload.run, False, "management API POST vs raw write, local and S3 on moto (~30 s)"),
    "worker": Section(worker.run, False, "S3 upload -> warm variants via SQS; `image-origin warm` vs raw (~90 s)"),
    "overload": Section(
        overload.run, False, "64 cold renders, 64 slow readers, 1,500 trickling connections: RSS (~2 min)"
    ),
    "faces": Section(faces.run, False, "face detector on labelled photos: hits, misses, false positives, CPU (~15 s)"),
}


def section_list(text: str) -> list[str]:
    """`a,b` -> ["a", "b"], refusing names that are not sections (argparse reports the error)."""
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown section {', '.join(unknown) or text!r}; choose from {', '.join(SECTIONS)}"
        )
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.splitlines()[0],
        epilog="sections: " + "; ".join(f"{name}: {s.about}" for name, s in SECTIONS.items()),
    )
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared" / "corpus"))
    parser.add_argument("--only", type=section_list, metavar="SECTION[,SECTION]", help="run only these sections")
    parser.add_argument("--skip", type=section_list, default=[], metavar="SECTION[,SECTION]", help="leave these out")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--wrk-seconds", type=int, default=WRK_SECONDS)
    parser.add_argument(
        "--baseline",
        metavar="GIT_REF",
        help="thumbor section: also run the origin as of this commit, side by side (before/after in one run)",
    )
    parser.add_argument(
        "--redis-url",
        default=REDIS_URL,
        help=f"the Redis the cache section uses, under a per-run key prefix (default {REDIS_URL})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    relaunch()  # the servers' malloc (huge pages) for the in-process floors too; after --help
    chosen = [name for name in SECTIONS if name in (args.only or SECTIONS) and name not in args.skip]
    corpus = Path(args.corpus).resolve()
    names = sorted(p.name for p in corpus.iterdir() if p.suffix in (".jpg", ".png") and class_of(p.name) in CLASSES)
    if not names:
        print(f"no corpus images (L-/M-/S- jpg/png) in {corpus}", file=sys.stderr)
        return 2
    if any(SECTIONS[name].needs_wrk for name in chosen) and not Path(args.wrk).exists():
        print(f"wrk not found at {args.wrk} (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    names.sort(key=lambda n: (CLASSES.index(class_of(n)), n))
    sources = {n: (corpus / n).read_bytes() for n in names}

    harden()  # the same loaders, operation cache and malloc arenas as the server
    started = time.monotonic()
    print(
        f"image-origin bench: {len(names)} images from {corpus}; w={WIDTH}; libvips "
        f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}; {os.cpu_count()} CPUs; "
        f"VIPS_CONCURRENCY={os.environ.get('VIPS_CONCURRENCY', 'default')}; sections: {', '.join(chosen)}"
    )
    load_start = os.getloadavg()[0]
    if load_start > 0.5:
        print(f"warning: 1-min load average is {load_start:.2f} before the bench; other work shares the CPUs")

    summary: list[tuple[str, str, str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="origin-bench-"))
    try:
        for name in chosen:
            SECTIONS[name].run(Run(args, names, sources, corpus, tmp, summary))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    section("summary")
    print(f"{'metric':34} {'value':>16} {'target':>9} {'':>5}")
    for metric, value, target, result in summary:
        print(f"{metric:34} {value:>16} {target:>9} {result:>5}")
    load_end = os.getloadavg()
    print(
        f"total bench time {time.monotonic() - started:.0f} s; 1-min load average before the bench {load_start:.2f},"
        f" after {load_end[0]:.2f} (on {os.cpu_count()} CPUs, other work running alongside skews every figure)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
