"""Storage URL -> backend: `file://PATH` (the embedded default) or `s3://BUCKET/PREFIX`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from .base import Storage
from .local import LocalStorage


async def open_storage(url: str, timeout: float) -> Storage:
    """Open the backend named by `url`; the caller closes it (app cleanup context)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalStorage(Path(parts.netloc + parts.path))
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r}")
