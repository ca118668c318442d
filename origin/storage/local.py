"""Originals in a local folder: the embedded default, no services needed.

The ETag is a hash of (inode, mtime, size). Writers replace files by renaming a new
file into place, which changes the inode, so a replaced original always gets a new
version even within the same mtime tick. File system calls run in a thread so a slow
disk never stalls the event loop.

Whatever else lies in the folder is treated as absent, never as a crash or a hang:
symlinks out of the root or in a loop, directories, FIFOs and other special files.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import stat
from pathlib import Path

from ..errors import NotFound, StorageError
from ..keys import validate_key
from .base import ObjectInfo


class LocalStorage:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        try:
            path = (self.root / validate_key(key)).resolve()
        except (RuntimeError, OSError):
            # A symlink loop (RuntimeError before Python 3.13, ELOOP after) leads nowhere.
            raise NotFound(f"no image at key {key!r}") from None
        if self.root not in path.parents:
            # A symlink that leads out of the root is treated as absent, never followed.
            raise NotFound(f"no image at key {key!r}")
        return path

    def _info(self, key: str, st: os.stat_result) -> ObjectInfo:
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"no image at key {key!r}")
        version = f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}".encode()
        return ObjectInfo(
            key=key,
            etag=hashlib.sha256(version).hexdigest()[:32],
            size=st.st_size,
            last_modified=st.st_mtime,
        )

    def _head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            return self._info(key, path.stat())
        except OSError as exc:
            raise _os_error(key, exc) from None

    def _get(self, key: str) -> tuple[bytes, ObjectInfo]:
        path = self._path(key)
        try:
            # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
            # forever, holding a thread; the fstat below then refuses anything irregular.
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            raise _os_error(key, exc) from None
        with open(fd, "rb") as handle:
            info = self._info(key, os.fstat(fd))
            try:
                return handle.read(), info
            except OSError as exc:
                raise _os_error(key, exc) from None

    async def head(self, key: str) -> ObjectInfo:
        return await asyncio.to_thread(self._head, key)

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        return await asyncio.to_thread(self._get, key)

    async def close(self) -> None:
        return None


_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENXIO})


def _os_error(key: str, exc: OSError) -> NotFound | StorageError:
    """Missing, a directory, a symlink swapped in, a socket: absent. Anything else: 502."""
    if exc.errno in _ABSENT:
        return NotFound(f"no image at key {key!r}")
    return StorageError(f"the object at key {key!r} cannot be read")
