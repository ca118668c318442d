"""The renderer: the only package that imports pyvips. Bytes in, bytes out, no I/O."""

from .config import RenderConfig
from .describe import describe
from .guard import RenderGuard
from .pipeline import Rendered, render
from .probe import SourceInfo, probe
from .security import UnsafeLibvips, harden

__all__ = [
    "RenderConfig",
    "RenderGuard",
    "Rendered",
    "SourceInfo",
    "UnsafeLibvips",
    "describe",
    "harden",
    "probe",
    "render",
]
