"""The render memory budget: estimates by source class, and renders that fit together run together."""

from __future__ import annotations

import threading
import time

import pytest
import pyvips

from origin.render import RenderGuard, probe
from origin.render import budget as budget_module
from origin.render.budget import MemoryBudget, estimate
from origin.settings import defaults
from tests.images import encode, flat, quadrants

MiB = 1 << 20


def _jpeg(image: pyvips.Image, **options: object) -> bytes:
    return encode(image, ".jpg", Q=90, **options)


@pytest.mark.parametrize(
    ("image", "options", "samples"),
    [
        (quadrants(64, 48), {"subsample_mode": "on"}, 1.5),
        (quadrants(64, 48), {"subsample_mode": "off"}, 3.0),
        (flat(64, 48).extract_band(0).copy(interpretation="b-w"), {}, 1.0),
        (flat(64, 48, (10, 20, 30, 40)).copy(interpretation="cmyk"), {}, 4.0),
    ],
    ids=["colour-4:2:0", "colour-4:4:4", "grey", "cmyk"],
)
def test_probe_counts_the_dct_samples_a_progressive_decode_holds(image, options, samples):
    info = probe(_jpeg(image, interlace=True, **options), defaults().render)
    assert info.progressive
    assert info.samples == samples


def test_progressive_estimate_follows_the_chroma_subsampling_and_ignores_the_shrink():
    config = defaults().render
    subsampled = probe(_jpeg(quadrants(800, 600), interlace=True, subsample_mode="on"), config)
    full = probe(_jpeg(quadrants(800, 600), interlace=True, subsample_mode="off"), config)
    pixels = 800 * 600
    # 2 bytes per DCT sample: 1.5 samples a pixel at 4:2:0, 3 at 4:4:4; subsampled chroma measures
    # 1 byte a pixel more than its coefficients, full chroma nothing more.
    assert estimate(full, 0, 8) - estimate(subsampled, 0, 8) == pytest.approx(pixels * (2 * 1.5 - 1.0), abs=8)
    # The coefficients are held whatever the shrink: only the decoded pixels shrink.
    assert estimate(subsampled, 0, 1) - estimate(subsampled, 0, 8) == 2 * 3 * (pixels - pixels // 64)
    baseline = probe(_jpeg(quadrants(800, 600), subsample_mode="on"), config)
    assert estimate(subsampled, 0, 8) - estimate(baseline, 0, 8) == pytest.approx(pixels * 4, abs=8)


def test_alpha_png_costs_more_than_opaque_png_of_the_same_size():
    config = defaults().render
    opaque = probe(encode(quadrants(400, 300)), config)
    alpha = probe(encode(quadrants(400, 300).bandjoin(200)), config)
    assert estimate(alpha, 0, 1) > estimate(opaque, 0, 1)
    assert estimate(opaque, 1000, 1) - estimate(opaque, 0, 1) == 1000  # the source bytes count too


def _hold(budget: MemoryBudget, cost: int, log: list[tuple[str, float]], name: str, seconds: float) -> None:
    with budget.reserve(cost, RenderGuard()):
        log.append((name + " in", time.monotonic()))
        time.sleep(seconds)
        log.append((name + " out", time.monotonic()))


def test_renders_that_fit_the_budget_together_run_together_and_one_that_does_not_waits():
    budget = MemoryBudget(160 * MiB)
    log: list[tuple[str, float]] = []
    first = threading.Thread(target=_hold, args=(budget, 60 * MiB, log, "a", 0.3))
    second = threading.Thread(target=_hold, args=(budget, 60 * MiB, log, "b", 0.3))
    first.start()
    time.sleep(0.05)
    second.start()
    time.sleep(0.05)
    assert [event for event, _ in log] == ["a in", "b in"]  # 120 MiB fit in 160: both run
    third = threading.Thread(target=_hold, args=(budget, 110 * MiB, log, "c", 0.0))
    third.start()
    for thread in (first, second, third):
        thread.join(timeout=5)
    events = [event for event, _ in log]
    assert events.index("c in") > events.index("a out") and events.index("c in") > events.index("b out")


def test_one_render_larger_than_the_whole_budget_still_runs_alone():
    budget = MemoryBudget(10 * MiB)
    log: list[tuple[str, float]] = []
    _hold(budget, 500 * MiB, log, "huge", 0.0)
    assert [event for event, _ in log] == ["huge in", "huge out"]
    assert budget.used == 0


def test_a_large_render_ending_alone_keeps_its_freed_memory_and_one_ending_among_others_trims(monkeypatch):
    trims: list[int] = []
    monkeypatch.setattr(budget_module, "_malloc_trim", lambda: trims.append(1))
    budget = MemoryBudget(160 * MiB)
    with budget.reserve(40 * MiB, RenderGuard()):
        pass
    assert trims == []  # alone: the next render reuses the pages; the pool's idle tidy returns them
    with budget.reserve(10 * MiB, RenderGuard()):
        with budget.reserve(40 * MiB, RenderGuard()):
            pass
        assert trims == [1]  # another render still holds memory: hand the freed pages back now
        with budget.reserve(1 * MiB, RenderGuard()):
            pass
        assert trims == [1]  # a small render never trims
    assert trims == [1] and budget.used == 0
