"""The renderer's knobs, as one frozen value passed into each render (no global state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..urlparams.text import TextLimits


@dataclass(frozen=True, slots=True)
class RenderConfig:
    max_source_pixels: int = 50_000_000
    max_source_side: int = 16384
    animation: bool = False
    max_frames: int = 100
    max_animation_pixels: int = 100_000_000
    max_animation_encode_pixels: int = 24_000_000
    max_output_side: int = 4096
    default_quality: int = 75
    compress_quality: int = 45
    avif_effort: int = 1
    webp_effort: int = 4
    text: TextLimits = field(default_factory=TextLimits)
