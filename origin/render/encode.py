"""Encode the final image; metadata is always stripped (`keep="none"`).

A 500 px WebP of an EXIF-heavy photo is 78 KB with its metadata and 16.5 KB without,
at no extra cost, and stripping also drops GPS positions users never meant to publish.
Output is sRGB, so no ICC profile is needed to display it correctly.
"""

from __future__ import annotations

import pyvips

from ..formats import MIME
from ..spec import TransformSpec
from . import blurhash, colour, pillow
from .config import RenderConfig

_ALPHA_FORMATS = frozenset({"png", "png8", "png32", "webp", "avif", "gif"})


def supports_alpha(fmt: str) -> bool:
    return fmt in _ALPHA_FORMATS


def quality(spec: TransformSpec, config: RenderConfig) -> int:
    """Explicit `q`, else imgix's lower default under `auto=compress`, else the default."""
    if spec.q is not None:
        return spec.q
    return config.compress_quality if "compress" in spec.auto else config.default_quality


def _bitdepth(colours: int) -> int:
    """The smallest palette bit depth libvips writes (1, 2, 4, 8) holding `colours`."""
    return next(bits for bits in (1, 2, 4, 8) if colours <= 2**bits)


def _profiled(image: pyvips.Image, spec: TransformSpec) -> tuple[pyvips.Image, int]:
    """`cs=srgb` (and `tinysrgb`, the closest we have) embed libvips' sRGB profile; `dpi` sets
    the density (PNG pHYs; for JPEG and WebP a fresh EXIF block holding only the resolution,
    every field the source carried being removed first). Anything else stays stripped."""
    keep = 0
    if spec.cs in ("srgb", "tinysrgb"):
        image = image.copy()
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", colour.srgb_profile())
        keep |= pyvips.enums.ForeignKeep.ICC
    if spec.dpi is not None:
        per_mm = spec.dpi / 25.4
        image = image.copy(xres=per_mm, yres=per_mm)
        for name in image.get_fields():
            if name.startswith("exif-") or name in ("xmp-data", "iptc-data"):
                image.remove(name)
        keep |= pyvips.enums.ForeignKeep.EXIF
    return image, keep


def encode(image: pyvips.Image, fmt: str, spec: TransformSpec, config: RenderConfig) -> bytes:
    """Bytes of `image` in `fmt` (jpg, pjpg, png, png8, png32, webp, avif, gif, blurhash).

    `png8` is a palette PNG; `png32` always has an alpha band; `colorquant` sets the palette
    size (as the bit depth holding it: libvips writes 1, 2, 4 or 8 bits); `chromasub=444` and
    `422` turn chroma subsampling off (libvips has no 4:2:2), `420` forces it on.
    """
    q = quality(spec, config)
    if fmt == "blurhash":
        return blurhash.encode(image).encode()
    image, keep = _profiled(image, spec)
    if fmt in ("jpg", "pjpg"):
        options: dict[str, object] = {}
        if spec.chromasub is not None:
            options["subsample_mode"] = "on" if spec.chromasub == 420 else "off"
        return image.jpegsave_buffer(Q=q, interlace=fmt == "pjpg", optimize_coding=True, keep=keep, **options)
    if fmt in ("png", "png8", "png32"):
        palette = fmt == "png8" or spec.colorquant is not None or ("compress" in spec.auto and not spec.lossless)
        if fmt == "png32" and not image.hasalpha():
            image = image.bandjoin(255)
        palette = palette and fmt != "png32"
        options = {"bitdepth": _bitdepth(spec.colorquant)} if palette and spec.colorquant else {}
        return image.pngsave_buffer(compression=6, palette=palette, Q=q, keep=keep, **options)
    if fmt == "webp":
        if not keep and not spec.lossless and pillow.can_encode_webp(image):
            return pillow.encode_webp(image, q, config.webp_effort)  # the same bytes, for less CPU
        return image.webpsave_buffer(Q=q, lossless=spec.lossless, effort=config.webp_effort, keep=keep)
    if fmt == "avif":
        return image.heifsave_buffer(
            Q=q, lossless=spec.lossless, compression="av1", effort=config.avif_effort, bitdepth=8, keep=keep
        )
    if fmt == "gif":
        options = {"bitdepth": _bitdepth(spec.colorquant)} if spec.colorquant else {}
        return image.gifsave_buffer(keep="none", **options)
    raise ValueError(f"no encoder for {fmt}")


def content_type(fmt: str) -> str:
    return MIME[fmt]
