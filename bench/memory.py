"""Memory section: the peak memory of one render per corpus image, beside the budget's estimate.

Each image is rendered (`w=500&fm=webp&q=80`, the origin's own `render()`, after `harden()`
and one warm-up render) in a fresh subprocess, `python -m bench.memory FILE`: the peak is the
kernel's VmHWM, reset just before the render, minus VmRSS before it, so the source bytes
(already in memory) are left out, as they are from the estimate printed beside it. This is
what `origin/render/budget.py`'s per-class constants are fitted to.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.common import CLASSES, Run, class_of, section

QUERY = (("w", "500"), ("fm", "webp"), ("q", "80"))
MiB = 1 << 20
UNDER_LIMIT = 0.75  # an estimate below 3/4 of the measured peak lets renders overcommit the budget


def measure_one(path: Path) -> dict[str, object]:
    """Run in the subprocess: one render of `path`, its peak and the estimate (source bytes excluded)."""
    from origin.formats import Accepts
    from origin.params import parse_query
    from origin.render import RenderGuard, harden, probe, render
    from origin.render.budget import estimate
    from origin.render.pipeline import jpeg_shrink
    from origin.settings import defaults

    def kib(field: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

    harden()
    configs = defaults()
    spec, config = parse_query(list(QUERY), configs.output), configs.render
    data = path.read_bytes()
    warm = pyvips_png()
    render(warm, spec, Accepts.LEGACY, config, None, RenderGuard())
    info = probe(data, config)
    shrink = jpeg_shrink(info, spec, config) if info.format == "jpg" else 1
    before = kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    render(data, spec, Accepts.LEGACY, config, None, RenderGuard())
    peak = (kib("VmHWM") - before) * 1024
    return {
        "peak": peak,
        "estimate": estimate(info, len(data), shrink) - len(data),
        "megapixels": info.width * info.height / 1e6,
        "progressive": info.progressive,
        "alpha": info.has_alpha,
        "samples": info.samples,
        "shrink": shrink,
    }


def pyvips_png() -> bytes:
    import pyvips

    return pyvips.Image.black(64, 64, bands=4).pngsave_buffer()


def kind(row: dict[str, object]) -> str:
    if row["samples"]:
        return "jpeg progressive" if row["progressive"] else "jpeg baseline"
    return "png alpha" if row["alpha"] else "png"


def run(ctx: Run) -> None:
    section("memory: peak RSS of one render per image (fresh process) vs the budget's estimate")
    rows = {}
    for name in ctx.names:
        out = subprocess.run(
            [sys.executable, "-m", "bench.memory", str(ctx.corpus / name)], capture_output=True, text=True, timeout=120
        )
        if out.returncode != 0:
            raise RuntimeError(f"bench.memory {name}: {out.stderr[-1000:]}")
        rows[name] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'image':28} {'kind':17} {'MP':>5} {'shrink':>6} {'peak MiB':>8} {'est MiB':>8} {'est/peak':>8}")
    for name, row in rows.items():
        print(
            f"{name:28} {kind(row):17} {row['megapixels']:>5.1f} {row['shrink']:>6} {row['peak'] / MiB:>8.1f}"
            f" {row['estimate'] / MiB:>8.1f} {row['estimate'] / max(row['peak'], 1):>8.2f}"
        )
    print("peak = VmHWM over the render minus VmRSS before it (source bytes excluded from both columns)")
    by_kind: dict[str, list[float]] = {}
    for row in rows.values():
        if row["peak"] >= 4 * MiB:  # below that, the allocator's noise is larger than the render
            by_kind.setdefault(kind(row), []).append(row["estimate"] / row["peak"])
    for label, ratios in sorted(by_kind.items()):
        low = min(ratios)
        ctx.summary.append(
            (
                f"memory est/peak {label}",
                f"{low:.2f}-{max(ratios):.2f}",
                f">= {UNDER_LIMIT}",
                "PASS" if low >= UNDER_LIMIT else "MISS",
            )
        )
    covered = {class_of(n) for n in rows}
    missing = [c for c in CLASSES if c not in covered]
    if missing:
        print(f"no corpus images of class {', '.join(missing)}")


if __name__ == "__main__":
    print(json.dumps(measure_one(Path(sys.argv[1]))))
