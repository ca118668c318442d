"""Storage URL -> backend: `file://PATH` (the embedded default) or `s3://BUCKET/PREFIX`."""

from __future__ import annotations

from urllib.parse import urlsplit

from .base import Storage
from .local import LocalStorage
from .location import local_folder


async def open_storage(url: str, timeout: float) -> Storage:
    """Open the backend named by `url`; the caller closes it (app cleanup context).

    `timeout` bounds each S3 call; the local folder has no network to wait for.
    """
    folder = local_folder(url)
    if folder is not None:
        return LocalStorage(folder)
    parts = urlsplit(url)
    if parts.scheme == "s3":
        from .s3 import S3Storage  # botocore costs ~0.3 s to import: only when S3 is used

        return await S3Storage.open(url, timeout)
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r}")
