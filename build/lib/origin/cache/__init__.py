"""In-process caches: rendered variants (byte-bounded LRU) and source versions (TTL)."""

from .memory import ByteLRU
from .metadata import MetadataCache

__all__ = ["ByteLRU", "MetadataCache"]
