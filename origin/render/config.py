"""The renderer's knobs, as one frozen value passed into each render (no global state).

No field has a default: `Settings.configs()` (origin/settings.py) is the one place the values are
written, from the settings of the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..urlparams.text import TextLimits


@dataclass(frozen=True, slots=True)
class RenderConfig:
    max_source_pixels: int
    max_source_side: int
    animation: bool
    max_frames: int
    max_animation_pixels: int
    max_animation_encode_pixels: int
    max_output_side: int
    default_quality: int
    compress_quality: int
    avif_effort: int
    webp_effort: int
    text: TextLimits
