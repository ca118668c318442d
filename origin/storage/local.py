"""Originals in a local folder: the embedded default, no services needed.

The ETag is a hash of (inode, mtime, size). Writers replace files by renaming a new
file into place, which changes the inode, so a replaced original always gets a new
version even within the same mtime tick. File system calls run in a thread so a slow
disk never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from pathlib import Path

from ..errors import NotFound
from ..keys import validate_key
from .base import ObjectInfo


class LocalStorage:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
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
        try:
            return self._info(key, self._path(key).stat())
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no image at key {key!r}") from None

    def _get(self, key: str) -> tuple[bytes, ObjectInfo]:
        try:
            with open(self._path(key), "rb") as handle:
                info = self._info(key, os.fstat(handle.fileno()))
                return handle.read(), info
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"no image at key {key!r}") from None

    async def head(self, key: str) -> ObjectInfo:
        return await asyncio.to_thread(self._head, key)

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        return await asyncio.to_thread(self._get, key)

    async def close(self) -> None:
        return None
