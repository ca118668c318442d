"""Storage URL -> backend: `file://PATH` (the embedded default) or `s3://BUCKET/PREFIX`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from .base import Storage
from .local import LocalStorage


async def open_storage(url: str, timeout: float) -> Storage:
    """Open the backend named by `url`; the caller closes it (app cleanup context).

    `timeout` bounds each S3 call; the local folder has no network to wait for.
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalStorage(Path(parts.netloc + parts.path))
    if parts.scheme == "s3":
        from .s3 import S3Storage  # botocore costs ~0.3 s to import: only when S3 is used

        return await S3Storage.open(url, timeout)
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r}")
