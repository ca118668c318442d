"""`image-origin warm`: pre-render every existing original, as if each had just been uploaded.

For a bucket that held images before the worker ran (or a new warm preset). Each listed
original goes through the handler's pre-render (no pruning, no CDN purge), so what is
stored is exactly what an upload event would store, and originals already done cost
one listing of their derived prefix and no render.

Bounded concurrency; a progress bar (rate, ETA once the originals are counted, skipped
and failed); a summary at the end. Resumable: a checkpoint names the last original such
that it and every one listed before it are finished, and a rerun with the same arguments
lists from there. It is written at most once a second, on interruption, and removed
after a complete pass, so the next run starts over (and finds most variants present).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import os
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from origin.presets import PresetError
from origin.settings import Configs
from origin.storage import ObjectInfo, Storage
from origin.storage.cursor import encode_cursor
from origin.storage.location import local_folder

from .handler import Handler, build_handler
from .prerender import Outcome

log = logging.getLogger("workers.warm")

PAGE = 200
SAVE_SECONDS = 1.0


@dataclass
class Summary:
    done: int = 0
    """Originals for which at least one variant was rendered."""
    skipped: int = 0
    """Originals with every variant present already (or gone since listed)."""
    failed: int = 0
    """Originals that could not be pre-rendered: not an image we serve, or an error."""
    seconds: float = 0.0
    resumed_after: str | None = None

    @property
    def total(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.done} done, {self.skipped} skipped, {self.failed} failed "
            f"in {self.seconds:.1f} s ({self.rate:.1f} images/s)"
        )


def state_path(storage_url: str, prefix: str, presets: Sequence[str] | None) -> Path:
    """Where a run with these arguments keeps its checkpoint: the data folder's `_/` for a local
    store, the working directory otherwise. Other arguments, other file: runs never mix."""
    material = json.dumps([storage_url, prefix, sorted(presets) if presets is not None else None])
    name = f"warm-{hashlib.sha256(material.encode()).hexdigest()[:16]}.json"
    folder = local_folder(storage_url)
    if folder is not None:
        return folder / "_" / name
    return Path(f".image-origin-{name}")


class _Frontier:
    """Originals in flight in listing order; `after` is the last one finished with all before it."""

    def __init__(self, after: str | None) -> None:
        self.after = after
        self._pending: OrderedDict[str, bool] = OrderedDict()

    def start(self, key: str) -> None:
        self._pending[key] = False

    def finish(self, key: str) -> None:
        self._pending[key] = True
        while self._pending:
            key, done = next(iter(self._pending.items()))
            if not done:
                return
            self._pending.popitem(last=False)
            self.after = key


class _Checkpoint:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved = 0.0

    def load(self) -> str | None:
        try:
            return str(json.loads(self.path.read_text())["after"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("%s is not a warm checkpoint; starting from the beginning", self.path)
            return None

    def save(self, after: str | None, *, now: bool = False) -> None:
        """Write atomically (temp file, rename), at most once per SAVE_SECONDS unless `now`."""
        if after is None or (not now and time.monotonic() - self._saved < SAVE_SECONDS):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        temp.write_text(json.dumps({"after": after}))
        os.replace(temp, self.path)
        self._saved = time.monotonic()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


async def warm(handler: Handler, *, prefix: str, concurrency: int, state: Path, progress: bool = True) -> Summary:
    """Pre-render every original under `prefix`, resuming after the checkpoint in `state`.

    Cancelling (SIGINT) saves the checkpoint and re-raises; a rerun continues from it.
    """
    storage = (await handler.open()).resources.storage
    checkpoint = _Checkpoint(state)
    frontier = _Frontier(checkpoint.load())
    summary = Summary(resumed_after=frontier.after)
    cursor = encode_cursor(frontier.after) if frontier.after is not None else None
    bar = tqdm(unit="img", disable=None if progress else True, dynamic_ncols=True)
    counter = asyncio.get_running_loop().create_task(_count(storage, prefix, cursor, bar))
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()
    started = time.perf_counter()

    async def one(info: ObjectInfo) -> None:
        try:
            outcome = await handler.backfill(info)
        except Exception as exc:  # noqa: BLE001 - one original's failure is counted, the rest go on
            outcome = None
            bar.write(f"failed: {info.key}: {type(exc).__name__}: {exc}")
        if outcome is Outcome.RENDERED:
            summary.done += 1
        elif outcome in (Outcome.PRESENT, Outcome.GONE, Outcome.STALE):
            summary.skipped += 1
        else:
            summary.failed += 1
        frontier.finish(info.key)
        checkpoint.save(frontier.after)
        bar.set_postfix(skipped=summary.skipped, failed=summary.failed, refresh=False)
        bar.update()
        slots.release()

    try:
        while True:
            page = await storage.list(prefix, cursor, PAGE)
            for info in page.items:
                await slots.acquire()
                frontier.start(info.key)
                task = asyncio.get_running_loop().create_task(one(info))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            cursor = page.cursor
            if cursor is None:
                break
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        checkpoint.save(frontier.after, now=True)
        raise
    else:
        checkpoint.remove()
    finally:
        counter.cancel()
        await asyncio.gather(counter, return_exceptions=True)  # a failed count only costs the ETA
        bar.close()
        summary.seconds = time.perf_counter() - started
    return summary


async def _count(storage: Storage, prefix: str, cursor: str | None, bar: tqdm) -> None:
    """Count the originals still to do, so the bar can show an ETA (listing only: cheap)."""
    total = 0
    while True:
        page = await storage.list(prefix, cursor, 1000)
        total += len(page.items)
        cursor = page.cursor
        if cursor is None:
            break
    bar.total = total
    bar.refresh()


def warm_command(
    configs: Configs,
    *,
    prefix: str = "",
    presets: Sequence[str] | None = None,
    concurrency: int | None = None,
    state: Path | None = None,
) -> int:
    """Run `warm` for the CLI: 0 when every original is done or skipped, 1 if some failed,
    130 when interrupted (SIGINT or SIGTERM; the checkpoint is saved), 2 for bad arguments."""
    workers = concurrency or configs.pool.workers
    if workers < 1:
        print("image-origin warm: --concurrency must be at least 1", file=sys.stderr)
        return 2
    # Each original renders one variant at a time: the queue must admit `workers` renders.
    configs = configs.replace(pool=dataclasses.replace(configs.pool, queue=max(configs.pool.queue, workers)))
    try:
        handler = build_handler(configs, presets)
    except (ValueError, PresetError) as exc:
        print(f"image-origin warm: {exc}", file=sys.stderr)
        return 2
    path = state or state_path(configs.storage.url, prefix, presets)

    async def main() -> Summary:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        async with handler:
            if (await handler.open()).prerender is None:
                raise _NoDerived
            with logging_redirect_tqdm():  # log lines above the bar, not through it
                return await warm(handler, prefix=prefix, concurrency=workers, state=path)

    try:
        summary = asyncio.run(main())
    except _NoDerived:
        print("image-origin warm: no derived storage: set derived_storage_url", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"image-origin warm: interrupted; run it again to resume ({path})", file=sys.stderr)
        return 130
    if summary.resumed_after is not None:
        print(f"warm: resumed after {summary.resumed_after!r}")
    print(f"warm: {summary}")
    return 1 if summary.failed else 0


class _NoDerived(Exception):
    """Pre-rendering needs somewhere to put the variants."""
