"""Where originals live: a small protocol and its backends (local folder, S3 and compatibles)."""

from .base import ObjectInfo, Page, Reader, Storage
from .factory import open_storage
from .local import LocalStorage

__all__ = ["LocalStorage", "ObjectInfo", "Page", "Reader", "Storage", "open_storage"]
