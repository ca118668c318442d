"""Originals in a local folder: the embedded default, no services needed.

The ETag is a hash of (inode, mtime, size). Writers put a new file in place by
linking or renaming it, which changes the inode, so a replaced original always gets a
new version even within the same mtime tick. File system calls run in a thread so a
slow disk never stalls the event loop.

Writes: the bytes go to a staging folder under `_/tmp/` (same file system, never listed
or served), are fsynced, then linked into place (create-only: link fails when the name
exists, so of two concurrent creates exactly one wins) or renamed over it (replace),
and the folder is fsynced. The staging folder is removed afterwards, so a failed or
refused write leaves no object, no partial object and the old version intact. Batches
(create_all, delete_all) also keep an intent journal there, so that a crash at any
point leaves each batch wholly applied or wholly absent once the folder is opened
again: see staging.py. A file system that turns read-only or full is a 507 naming it.

If-Match compares the current ETag and renames under a lock: one of 64 lock files
under `_/locks/`, held with flock. That serialises writers in this process and in
other processes on this host; it does not hold across hosts sharing the folder over
NFS (use S3 for several machines).

Metadata: the content type is sniffed from the first bytes (the origin trusts only the
magic bytes anyway). No
sidecar file means nothing to keep in step with the object.

Whatever else lies in the folder is treated as absent, never as a crash or a hang:
symlinks out of the root, into `_/` or in a loop, directories, FIFOs and other
special files. A key cannot be both an object and a folder of other objects
(KeyConflict).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

from ..errors import (
    AlreadyExists,
    InvalidKey,
    KeyConflict,
    NotFound,
    PreconditionFailed,
    RangeNotSatisfiable,
    StorageError,
    UnsupportedMedia,
)
from ..formats import MIME, sniff
from ..keys import RESERVED_PREFIX, validate_key
from .base import KeysAbsent, KeysTaken, NewObject, ObjectInfo, Page, StorageUnusable, StorageUnwritable
from .cursor import decode_cursor, encode_cursor
from .staging import JOURNAL, Intent, Stage, abandoned, fsync_folder, read_intent, remove

_SNIFF_BYTES = 4096
"""Enough for every magic number `sniff` knows, AVIF's brand list included."""
_LOCK_STRIPES = 64
_PUT_ATTEMPTS = 3
log = logging.getLogger("origin.storage")


class LocalStorage:
    def __init__(self, root: Path) -> None:
        """Open the folder: refuse it if it cannot be written (StorageUnusable), then recover.

        Recovery rolls back every batch a dead process left unfinished and removes its temp
        files (storage/staging.py), before anything is served.
        """
        self.root = root.resolve()
        self._reserved = self.root / RESERVED_PREFIX.rstrip("/")
        self._tmp = self._reserved / "tmp"
        self._locks = self._reserved / "locks"
        self._gate = self._locks / "tmp"
        try:
            for folder in (self.root, self._tmp, self._locks):
                os.makedirs(folder, exist_ok=True)
                if not os.access(folder, os.W_OK | os.X_OK):
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))
            self._recover()
        except OSError as exc:
            raise StorageUnusable(_unusable(root, exc)) from exc

    # ------------------------------------------------------------------ reading

    def _path(self, key: str) -> Path:
        try:
            path = (self.root / validate_key(key)).resolve()
        except (RuntimeError, OSError):
            # A symlink loop (RuntimeError before Python 3.13, ELOOP after) leads nowhere.
            raise NotFound(f"no image at key {key!r}") from None
        if not self._inside(path):
            # A symlink out of the root or into `_/` is treated as absent, never followed.
            raise NotFound(f"no image at key {key!r}")
        return path

    def _inside(self, path: Path) -> bool:
        """Under the root and outside the reserved `_/` folder."""
        return self.root in path.parents and path != self._reserved and self._reserved not in path.parents

    def _info(self, key: str, st: os.stat_result, head: bytes) -> ObjectInfo:
        version = f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}".encode()
        return ObjectInfo(
            key=key,
            etag=hashlib.sha256(version).hexdigest()[:32],
            size=st.st_size,
            last_modified=st.st_mtime,
            content_type=_content_type(head),
        )

    def _open_fd(self, key: str) -> tuple[int, os.stat_result]:
        """A read-only descriptor of the object's regular file, and its status."""
        path = self._path(key)
        try:
            # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
            # forever, holding a thread; the fstat below then refuses anything irregular.
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            raise _os_error(key, exc) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise NotFound(f"no image at key {key!r}")
        return fd, st

    def _read(self, key: str, size: int) -> tuple[bytes, ObjectInfo]:
        """Up to `size` bytes (-1: all) of the object, and its version."""
        fd, st = self._open_fd(key)
        with open(fd, "rb") as handle:
            try:
                data = handle.read(size)
            except OSError as exc:
                raise _os_error(key, exc) from None
        return data, self._info(key, st, data[:_SNIFF_BYTES])

    def _open(self, key: str, start: int, end: int | None) -> _FileReader:
        fd, st = self._open_fd(key)
        if start >= st.st_size:
            os.close(fd)
            raise RangeNotSatisfiable(
                "the requested range lies past the end", headers={"Content-Range": f"bytes */{st.st_size}"}
            )
        stop = st.st_size if end is None else min(end + 1, st.st_size)
        # No type: that would cost a read outside the span (the caller sniffs once per version).
        return _FileReader(key, fd, dataclasses.replace(self._info(key, st, b""), content_type=""), start, stop)

    async def head(self, key: str) -> ObjectInfo:
        return (await asyncio.to_thread(self._read, key, _SNIFF_BYTES))[1]

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        return await asyncio.to_thread(self._read, key, -1)

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> _FileReader:
        return await asyncio.to_thread(self._open, key, start, end)

    # ------------------------------------------------------------------ writing

    def _target(self, key: str) -> Path:
        """Where `key`'s file goes: its folder resolved (symlinks followed), its own name not.

        The last component is left alone so a write or delete replaces a symlink
        rather than whatever it points to.
        """
        path = self.root / validate_key(key)
        try:
            folder = path.parent.resolve()
        except (RuntimeError, OSError):
            raise KeyConflict(f"the key {key!r} cannot be stored: its folder is a symlink loop") from None
        if folder != self.root and not self._inside(folder):
            raise KeyConflict(f"the key {key!r} cannot be stored: its folder leads out of the storage")
        return folder / path.name

    def _make_folders(self, key: str, folder: Path) -> list[Path]:
        """Create `folder` and its missing parents; returns the folders whose entries changed."""
        changed: list[Path] = []
        current = self.root
        for part in folder.relative_to(self.root).parts:
            current = current / part
            try:
                os.mkdir(current)
                changed.append(current.parent)
            except FileExistsError:
                if not current.is_dir():
                    raise _conflict(key) from None
            except NotADirectoryError:
                raise _conflict(key) from None
        return changed

    @contextlib.contextmanager
    def _lock(self, target: Path) -> Iterator[None]:
        """Hold the lock stripe of `target` (flock: other threads and processes on this host wait)."""
        stripe = hashlib.sha256(os.fsencode(target)).digest()[0] % _LOCK_STRIPES
        fd = os.open(self._locks / f"{stripe:02x}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def _put(self, key: str, data: bytes, if_none_match: bool, if_match: str | None) -> ObjectInfo:
        target = self._target(key)
        try:
            with self._stage() as stage:
                st = stage.write("0", data)  # link and rename keep inode and mtime: the new version
                changed = self._place(key, str(stage.file("0")), target, if_none_match, if_match)
                for folder in changed:
                    fsync_folder(folder)
        except OSError as exc:
            raise _write_error(f"the object at key {key!r} could not be stored", exc) from exc
        return self._info(key, st, data[:_SNIFF_BYTES])

    def _stage(self) -> Stage:
        return Stage(self._tmp, self._gate)

    def _place(self, key: str, tmp: str, target: Path, if_none_match: bool, if_match: str | None) -> set[Path]:
        """Make the folders and commit; returns the folders to fsync."""
        for _ in range(_PUT_ATTEMPTS):
            changed = self._make_folders(key, target.parent)
            try:
                with self._lock(target):
                    self._commit(key, tmp, target, if_none_match, if_match)
                return {target.parent, *changed}
            except FileNotFoundError:
                continue  # a delete removed the (then empty) folder meanwhile: make it again
        raise StorageError(f"the object at key {key!r} could not be stored: its folder keeps vanishing")

    def _commit(self, key: str, tmp: str, target: Path, if_none_match: bool, if_match: str | None) -> None:
        """Put the temp file in place under the lock, checking the precondition."""
        if if_none_match:
            try:
                os.link(tmp, target, follow_symlinks=False)
            except FileExistsError:
                if target.is_dir() and not target.is_symlink():
                    raise _conflict(key) from None
                raise AlreadyExists(f"an image exists at key {key!r}") from None
            except NotADirectoryError:
                raise _conflict(key) from None
            return
        if if_match is not None:
            try:
                current = self._read(key, _SNIFF_BYTES)[1].etag
            except NotFound:
                current = None
            if current != if_match.strip('"'):
                raise PreconditionFailed(f"the image at key {key!r} is not at version {if_match!r}")
        try:
            os.replace(tmp, target)
        except (IsADirectoryError, NotADirectoryError):
            raise _conflict(key) from None

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> ObjectInfo:
        # content_type is not stored: see the module docstring.
        return await asyncio.to_thread(self._put, key, data, if_none_match, if_match)

    def _delete(self, keys: Sequence[str]) -> None:
        targets = []
        for key in keys:
            try:
                targets.append(self._target(key))
            except KeyConflict:
                continue  # its folder leads nowhere we store: nothing there to remove
        changed: set[Path] = set()
        try:
            for target in targets:
                with self._lock(target):
                    try:
                        os.unlink(target)
                    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                        continue  # absent, or a folder (not an object)
                changed.add(self._prune(target.parent))
            for folder in changed:
                fsync_folder(folder)
        except OSError as exc:
            raise _write_error("the objects could not be removed", exc) from exc

    # ------------------------------------------------------------------ batches (see staging.py)

    def _create_all(self, objects: Sequence[NewObject]) -> list[ObjectInfo]:
        """Stage every file, journal the intent, link each into place; roll back on any refusal."""
        targets = [self._target(item.key) for item in objects]
        try:
            with self._stage() as stage:
                stats = [stage.write(str(n), item.data) for n, item in enumerate(objects)]
                intent = Intent("create", [(item.key, str(n)) for n, item in enumerate(objects)])
                stage.begin(intent)
                changed: set[Path] = set()
                try:
                    for n, (item, target) in enumerate(zip(objects, targets, strict=True)):
                        changed |= self._place(item.key, str(stage.file(str(n))), target, True, None)
                except AlreadyExists:
                    taken = [item.key for n, item in enumerate(objects) if self._taken(item.key, stage.file(str(n)))]
                    self._roll_back(stage.path, intent)
                    raise KeysTaken(taken) from None
                except BaseException:
                    self._roll_back(stage.path, intent)
                    raise
                for folder in changed:
                    fsync_folder(folder)
                stage.commit()
        except OSError as exc:
            raise _write_error("the images could not be stored", exc) from exc
        return [self._info(item.key, st, item.data[:_SNIFF_BYTES]) for item, st in zip(objects, stats, strict=True)]

    def _taken(self, key: str, staged: Path) -> bool:
        """Is `key` held by something other than this batch's own (staged) file?"""
        try:
            found = os.lstat(self._target(key))
            ours = os.lstat(staged)
        except (OSError, KeyConflict):
            return False
        return (found.st_dev, found.st_ino) != (ours.st_dev, ours.st_ino)

    def _delete_all(self, keys: Sequence[str]) -> None:
        """Journal the intent, move each object into the stage; commit, or put them back."""
        intent = Intent("delete", [(key, str(n)) for n, key in enumerate(keys)])
        try:
            with self._stage() as stage:
                stage.begin(intent)
                missing: list[str] = []
                changed: set[Path] = set()
                try:
                    for n, (key, name) in enumerate(intent.entries):
                        if not self._move_out(key, stage.file(name)):
                            # Those before were moved out by us: name this one and every later one missing.
                            missing = [key, *(k for k in keys[n + 1 :] if not self._exists(k))]
                            break
                        changed.add(self._target(key).parent)
                except BaseException:
                    self._roll_back(stage.path, intent)
                    raise
                if missing:
                    self._roll_back(stage.path, intent)
                    raise KeysAbsent(missing)
                for folder in changed | {stage.path}:
                    fsync_folder(folder)
                stage.commit()
            pruned = {self._prune(folder) for folder in changed}
            for folder in pruned:
                fsync_folder(folder)
        except OSError as exc:
            raise _write_error("the images could not be removed", exc) from exc

    def _move_out(self, key: str, to: Path) -> bool:
        """Move the object at `key` to `to` under its lock; False when there is none."""
        try:
            target = self._target(key)
        except KeyConflict:
            return False
        with self._lock(target):
            if not self._exists(key):
                return False
            try:
                os.rename(target, to)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return False
        return True

    def _exists(self, key: str) -> bool:
        """What a GET would find: a regular file inside the root (symlinks followed)."""
        try:
            self._read(key, 0)
        except (NotFound, InvalidKey, StorageError):
            return False
        return True

    def _roll_back(self, folder: Path, intent: Intent) -> None:
        """Undo what `intent` did so far (from the staged files in `folder`), then drop its journal."""
        changed: set[Path] = set()
        for key, name in intent.entries:
            staged = folder / name
            try:
                target = self._target(key)
            except (InvalidKey, KeyConflict):
                continue
            if intent.kind == "create":
                changed |= self._unlink_ours(target, staged)
            else:
                changed |= self._put_back(key, target, staged)
        for path in changed:
            fsync_folder(path)
        (folder / JOURNAL).unlink(missing_ok=True)
        fsync_folder(folder)

    def _unlink_ours(self, target: Path, staged: Path) -> set[Path]:
        """Remove `target` if it is still the staged file (the same inode), never another version."""
        with self._lock(target):
            try:
                ours, found = os.lstat(staged), os.lstat(target)
            except (FileNotFoundError, NotADirectoryError):
                return set()
            if (found.st_dev, found.st_ino) != (ours.st_dev, ours.st_ino):
                return set()
            os.unlink(target)
        return {target.parent, self._prune(target.parent)}

    def _put_back(self, key: str, target: Path, staged: Path) -> set[Path]:
        """Link a moved-out object back in place, unless the key was created again meanwhile."""
        if not os.path.lexists(staged):
            return set()
        try:
            changed = self._place(key, str(staged), target, True, None)
        except (AlreadyExists, KeyConflict):
            if not self._taken(key, staged):  # already put back by a recovery that was cut short
                os.unlink(staged)
                return set()
            log.warning("could not put %r back while rolling back a delete: the key was stored again", key)
            return set()
        os.unlink(staged)
        return changed

    async def create_all(self, objects: Sequence[NewObject]) -> list[ObjectInfo]:
        return await asyncio.to_thread(self._create_all, list(objects))

    async def delete_all(self, keys: Sequence[str]) -> None:
        for key in keys:
            validate_key(key)
        await asyncio.to_thread(self._delete_all, list(keys))

    def _prune(self, folder: Path) -> Path:
        """Remove `folder` and its parents while empty, so their names can become keys again."""
        while folder != self.root:
            try:
                os.rmdir(folder)
            except OSError:
                break
            folder = folder.parent
        return folder

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            validate_key(key)
        await asyncio.to_thread(self._delete, list(keys))

    # ------------------------------------------------------------------ listing

    def _walk(self, folder: Path, base: str, prefix: str, after: str | None) -> Iterator[ObjectInfo]:
        """Objects under `folder` whose keys start with `prefix` and follow `after`, in key order.

        A folder sorts as its name plus "/", which puts its keys exactly where UTF-8 byte
        order (the same as code point order) puts them; folders that cannot hold a
        wanted key are skipped unread.
        """
        try:
            with os.scandir(folder) as entries:
                found = [(e.name + "/" if e.is_dir(follow_symlinks=False) else e.name) for e in entries]
        except OSError:
            return  # removed or unreadable meanwhile: nothing to list there
        for name in sorted(found):
            key = base + name
            if not base and name == RESERVED_PREFIX:
                continue
            if name.endswith("/"):
                wanted = key.startswith(prefix) or prefix.startswith(key)
                if wanted and (after is None or after < key or after.startswith(key)):
                    yield from self._walk(folder / name, key, prefix, after)
            elif key.startswith(prefix) and (after is None or key > after):
                try:
                    yield self._read(key, _SNIFF_BYTES)[1]
                except (InvalidKey, NotFound, StorageError):
                    continue  # a name no key can have, a symlink out, a FIFO: not an object

    def _list(self, prefix: str, cursor: str | None, limit: int) -> Page:
        after = decode_cursor(cursor, prefix) if cursor is not None else None
        items = list(islice(self._walk(self.root, "", prefix, after), limit + 1))
        if len(items) > limit:
            return Page(items[:limit], encode_cursor(items[limit - 1].key))
        return Page(items, None)

    async def list(self, prefix: str, cursor: str | None, limit: int) -> Page:
        return await asyncio.to_thread(self._list, prefix, cursor, max(1, limit))

    async def ping(self) -> None:
        """One listing, and the root opened too, as a listing forgives a missing root."""
        await self.list("", None, 1)
        await asyncio.to_thread(_open_folder, self.root)

    async def close(self) -> None:
        return None

    def _recover(self) -> None:
        """Roll back the batches of writers that died, and remove every temp file they left."""
        for path in abandoned(self._tmp, self._gate):
            intent = read_intent(path) if path.is_dir() else None
            if intent is not None:
                log.warning(
                    "rolling back an unfinished %s of %d image(s) left by a stopped process",
                    intent.kind,
                    len(intent.entries),
                )
                self._roll_back(path, intent)
            remove(path)


class _FileReader:
    """A span of an open file, read with pread (a seek, not a read from the start) in a thread."""

    def __init__(self, key: str, fd: int, info: ObjectInfo, start: int, stop: int) -> None:
        self.info = info
        self._key = key
        self._fd: int | None = fd
        self._position = start
        self._stop = stop

    async def read(self, size: int) -> bytes:
        count = min(size, self._stop - self._position)
        if count <= 0 or self._fd is None:
            return b""
        try:
            data = await asyncio.to_thread(os.pread, self._fd, count, self._position)
        except OSError as exc:
            raise _os_error(self._key, exc) from None
        if not data:
            self._stop = self._position  # the file shrank under us: nothing more to read
        self._position += len(data)
        return data

    async def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENXIO})
_READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def _content_type(head: bytes) -> str:
    try:
        return MIME[sniff(head)]
    except UnsupportedMedia:
        return "application/octet-stream"


def _conflict(key: str) -> KeyConflict:
    return KeyConflict(f"the key {key!r} cannot be both an image and a folder of other images")


def _unusable(root: Path, exc: OSError) -> str:
    """One line for the operator: which folder, and why it cannot be written."""
    where = f" ({exc.filename})" if exc.filename and Path(exc.filename) != root else ""
    if exc.errno in _READ_ONLY:
        try:
            read_only_mount = bool(os.statvfs(exc.filename or root).f_flag & os.ST_RDONLY)
        except OSError:
            read_only_mount = False
        reason = (
            "it is read-only (a read-only file system)" if read_only_mount else "it is read-only (no write permission)"
        )
    else:
        reason = (exc.strerror or str(exc)).lower()
    return (
        f"the data folder {root} cannot be used: {reason}{where}; "
        "uploads, deletes, derived variants and the generated token need it writable"
    )


def _write_error(message: str, exc: OSError) -> StorageError:
    """A read-only or full file system is named (507); anything else is a storage failure (502)."""
    if exc.errno in _READ_ONLY:
        return StorageUnwritable(f"{message}: storage is read-only")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageUnwritable(f"{message}: storage is full")
    return StorageError(message)


def _os_error(key: str, exc: OSError) -> NotFound | StorageError:
    """Missing, a directory, a symlink swapped in, a socket: absent. Anything else: 502."""
    if exc.errno in _ABSENT:
        return NotFound(f"no image at key {key!r}")
    return StorageError(f"the object at key {key!r} cannot be read")


def _open_folder(root: Path) -> None:
    with os.scandir(root):
        pass
