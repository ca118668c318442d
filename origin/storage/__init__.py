"""Where originals live: a small protocol and its backends (local folder now, S3 next)."""

from .base import ObjectInfo, Storage
from .local import LocalStorage

__all__ = ["LocalStorage", "ObjectInfo", "Storage"]
