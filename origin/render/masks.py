"""`mask`: cut the output to an ellipse, to rounded corners (`corner-radius`, which the parser
fills with imgix's default when not given), or to another image's alpha (its luminance when it has none), resized to the output. Outside the mask is
transparent, `mask-bg` when given, or `bg`/white where the format has no alpha."""

from __future__ import annotations

import pyvips

from ..spec import TransformSpec
from . import shapes
from .config import RenderConfig
from .probe import STRICT_LOAD, probe


def coverage(image: pyvips.Image, spec: TransformSpec, mask_data: bytes | None, config: RenderConfig) -> pyvips.Image:
    w, h = image.width, image.height
    if spec.mask == "ellipse":
        return shapes.ellipse(w, h)
    if spec.mask == "corners":
        assert spec.corner_radius is not None, "the parser writes imgix's default radius"
        return shapes.rounded_rect(w, h, spec.corner_radius)
    assert mask_data is not None
    probe(mask_data, config)  # the same source limits as any image we decode
    mask = pyvips.Image.thumbnail_buffer(mask_data, w, height=h, size="force", option_string=STRICT_LOAD)
    if mask.hasalpha():
        return mask.extract_band(mask.bands - 1).cast("uchar")
    return mask.colourspace("b-w").extract_band(0).cast("uchar")


def apply(image: pyvips.Image, spec: TransformSpec, mask_data: bytes | None, config: RenderConfig) -> pyvips.Image:
    masked = shapes.apply_coverage(image, coverage(image, spec, mask_data, config))
    if spec.mask_bg is not None:
        masked = shapes.over_colour(masked, spec.mask_bg)
    return masked
