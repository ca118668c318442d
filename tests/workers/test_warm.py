"""`image-origin warm`: every original pre-rendered, resumable after an interruption, summed up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from origin.cli import main
from origin.settings import Settings
from origin.storage import ObjectInfo
from tests.images import jpeg, png
from workers.handler import Handler, build_handler
from workers.prerender import Outcome
from workers.warm import state_path, warm

IMAGES = [f"shop/{i:02d}.jpg" for i in range(8)]
PER_IMAGE = 3
"""card (auto=format) in AVIF, WebP and legacy."""


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    presets = tmp_path / "presets.yaml"
    presets.write_text("presets:\n  card: {w: 24, h: 16, fit: crop, auto: format, warm: true}\n  hero: {w: 40}\n")
    return make_settings(presets=presets)


@pytest.fixture
def originals(store: Callable[[str, bytes], Path]) -> None:
    for i, key in enumerate(IMAGES):
        store(key, jpeg(40 + i, 30))
    store("shop/zz-not-an-image.jpg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    store("other/elsewhere.png", png(8, 8))


def derived(data_dir: Path) -> dict[str, int]:
    root = data_dir / "_" / "derived"
    found: dict[str, int] = {}
    for path in root.rglob("*"):
        if path.is_file() and "_" not in path.relative_to(root).parts[:1]:
            key = str(path.parent.relative_to(root))
            found[key] = found.get(key, 0) + 1
    return found


async def test_warm_prerenders_every_original_under_the_prefix(settings, originals, data_dir, tmp_path):
    state = tmp_path / "state.json"
    async with build_handler(settings.configs()) as handler:
        summary = await warm(handler, prefix="shop/", concurrency=3, state=state, progress=False)
        assert (await handler.open()).resources.pool.renders == len(
            IMAGES
        ) * PER_IMAGE + 1  # the SVG is refused at its first
    assert (summary.done, summary.skipped, summary.failed) == (len(IMAGES), 0, 1)
    assert summary.total == len(IMAGES) + 1 and summary.rate > 0
    assert derived(data_dir) == {key: PER_IMAGE for key in IMAGES}
    assert not state.exists()  # a complete pass leaves no checkpoint: the next run starts over

    async with build_handler(settings.configs()) as handler:
        again = await warm(handler, prefix="shop/", concurrency=3, state=state, progress=False)
        assert (await handler.open()).resources.pool.renders == 1  # only the SVG's refused attempt
    assert (again.done, again.skipped, again.failed) == (0, len(IMAGES), 1)


async def test_warm_resumes_after_an_interruption_without_redoing_work(
    settings, originals, data_dir, tmp_path, monkeypatch
):
    state = tmp_path / "state.json"
    seen: list[str] = []
    original = Handler.backfill
    interrupted = 3

    async def counting(self: Handler, info: ObjectInfo) -> Outcome:
        outcome = await original(self, info)
        seen.append(info.key)
        if len(seen) == interrupted and task is not None:
            task.cancel()  # as SIGINT does to asyncio.run's main task
        return outcome

    monkeypatch.setattr(Handler, "backfill", counting)
    async with build_handler(settings.configs()) as handler:
        task: asyncio.Task[Any] | None = asyncio.create_task(
            warm(handler, prefix="shop/", concurrency=1, state=state, progress=False)
        )
        with pytest.raises(asyncio.CancelledError):
            await task
    assert json.loads(state.read_text()) == {"after": IMAGES[interrupted - 1]}
    assert seen == IMAGES[:interrupted]

    task = None
    async with build_handler(settings.configs()) as handler:
        summary = await warm(handler, prefix="shop/", concurrency=2, state=state, progress=False)
        assert (await handler.open()).resources.pool.renders == (len(IMAGES) - interrupted) * PER_IMAGE + 1
    assert sorted(seen[interrupted:]) == sorted(IMAGES[interrupted:] + ["shop/zz-not-an-image.jpg"])
    assert summary.resumed_after == IMAGES[interrupted - 1]
    assert (summary.done, summary.skipped, summary.failed) == (len(IMAGES) - interrupted, 0, 1)
    assert derived(data_dir) == {key: PER_IMAGE for key in IMAGES}
    assert not state.exists()


def test_the_warm_command(settings, originals, data_dir, tmp_path, monkeypatch, capsys):
    config = tmp_path / "settings.yaml"
    config.write_text(json.dumps({"storage_url": settings.storage_url, "presets": str(settings.presets)}))
    code = main(["warm", "--config", str(config), "--prefix", "shop/", "--presets", "hero", "--concurrency", "2"])
    assert code == 1  # one original could not be pre-rendered
    out = capsys.readouterr().out
    assert f"warm: {len(IMAGES)} done, 0 skipped, 1 failed in " in out and "images/s" in out
    assert derived(data_dir) == {key: 1 for key in IMAGES}  # hero only, not the warm preset
    assert not state_path(settings.storage_url, "shop/", ["hero"]).exists()
    assert main(["warm", "--config", str(config), "--presets", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_each_set_of_arguments_has_its_own_checkpoint(settings, data_dir):
    path = state_path(settings.storage_url, "a/", None)
    assert path.parent == data_dir / "_"
    assert path != state_path(settings.storage_url, "b/", None) != state_path(settings.storage_url, "a/", ["card"])
    assert state_path(settings.storage_url, "a/", ["x", "y"]) == state_path(settings.storage_url, "a/", ["y", "x"])
