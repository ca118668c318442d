"""Crash-safe writes on the local folder: staging folders held with flock, and an intent journal.

Every write first puts its bytes in a staging folder of its own, `_/tmp/{id}/`, which
its owner holds with flock for as long as it runs. The kernel drops a flock when the
process dies, even by `kill -9`, so a staging folder nobody holds belongs to a dead
writer; two processes sharing the data folder on one host never take each other's.

A batch (several keys created, or several removed) also writes an intent journal,
`journal.json` in its staging folder, and makes it durable before the first change
anyone can see. Removing the journal is the commit, once every change is durable. At
start, before anything is served, every staging folder nobody holds is recovered: a
journal still there means the batch never committed, so it is rolled back (created
keys that are still the batch's own files are removed; removed keys are put back from
the staging folder, where a delete moves them), and the folder is removed with
whatever temp files it holds. So after a crash at any point a batch is wholly applied
or wholly absent, and no temp file older than the restart is left.

Rolling back can always be done from what the staging folder holds: a created key is
a hard link to the staged file (same inode), so "still the batch's own file" is an
inode comparison that a later replacement by someone else never matches; a removed
key's file was renamed into the staging folder, so putting it back is a link.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

JOURNAL = "journal.json"
Kind = Literal["create", "delete"]
log = logging.getLogger("origin.storage")


@dataclass(frozen=True, slots=True)
class Intent:
    """What a batch is about to do: `entries` pairs each key with its file's name in the stage."""

    kind: Kind
    entries: list[tuple[str, str]]


class Stage:
    """A staging folder under `tmp`, held (flock) by this writer until `close`."""

    def __init__(self, tmp: Path, gate: Path) -> None:
        os.makedirs(tmp, exist_ok=True)
        # Shared hold on the gate while the folder is made and locked: the start-up sweep
        # takes it exclusively, so it never sees a new folder before its owner holds it.
        with _flocked(gate, fcntl.LOCK_SH):
            self.path = Path(tempfile.mkdtemp(dir=tmp, prefix="w-"))
            self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the folder (what a rolled-back or committed write leaves), then let go."""
        if (self.path / JOURNAL).exists():
            # A rollback that failed: the journal stays for the next start to finish it.
            log.error("a batch could not be rolled back; %s is recovered at the next start", self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)

    def file(self, name: str) -> Path:
        return self.path / name

    def write(self, name: str, data: bytes) -> os.stat_result:
        """A durable staged file (mode 0644, as served); its stat is the object's version."""
        fd = os.open(self.file(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        with open(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(fd, 0o644)
            os.fsync(fd)
            return os.fstat(fd)

    def begin(self, intent: Intent) -> None:
        """Write the journal and make it (and the staged files, and this folder) durable."""
        body = json.dumps({"kind": intent.kind, "entries": intent.entries}).encode()
        fd = os.open(self.file(JOURNAL), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(fd)
        fsync_folder(self.path)
        fsync_folder(self.path.parent)

    def commit(self) -> None:
        """The batch is durable everywhere: drop the journal, so no start undoes it."""
        os.unlink(self.file(JOURNAL))
        fsync_folder(self.path)


def read_intent(folder: Path) -> Intent | None:
    """The journal in a staging folder; None when there is none (or it was never completed)."""
    try:
        raw = json.loads((folder / JOURNAL).read_bytes())
        entries = [(str(key), str(name)) for key, name in raw["entries"]]
        kind = raw["kind"]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        # Torn before its fsync finished: the batch had not changed anything yet.
        return None
    if kind not in ("create", "delete"):
        return None
    return Intent(kind, entries)


def abandoned(tmp: Path, gate: Path) -> Iterator[Path]:
    """Every entry of `tmp` whose writer is gone, held by us while the caller recovers it.

    Yields staging folders (locked by this process until the next step) and loose files
    (left by versions that staged flat files); the caller removes each.
    """
    if not tmp.is_dir():
        return
    with _flocked(gate, fcntl.LOCK_EX):
        for entry in sorted(os.scandir(tmp), key=lambda e: e.name):
            path = Path(entry.path)
            if not entry.is_dir(follow_symlinks=False):
                yield path
                continue
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer's (this process or another)
                yield path
            finally:
                os.close(fd)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def _flocked(path: Path, operation: int) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Make a link, rename or unlink in `folder` durable (skipped if the folder went away)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
