"""A progressive JPEG stripped for a 1/8 decode (origin/render/jpegscan.py) decodes to exactly
the pixels of the whole file at 1/8: compared with libvips' own `shrink=8` decode, for the
progression scripts of both encoders here (libvips' mozjpeg and Pillow's libjpeg-turbo),
4:2:0 and 4:4:4 colour, grey, partial blocks and more blocks than one end-of-band run holds."""

from __future__ import annotations

import io
from urllib.parse import parse_qsl

import pytest
import pyvips
from PIL import Image

from origin.formats import Accepts
from origin.params import parse_query
from origin.render import RenderGuard, harden, jpegscan, pillow, render
from origin.settings import defaults
from tests.images import max_difference, textured

CONFIG = defaults().render
LIMITS = defaults().output


@pytest.fixture(scope="module", autouse=True)
def hardened() -> None:
    harden()


def progressive(image: pyvips.Image, encoder: str, subsample: bool = True) -> bytes:
    if encoder == "libvips":
        return image.jpegsave_buffer(Q=85, interlace=True, subsample_mode="on" if subsample else "off")
    out = io.BytesIO()
    mode = "L" if image.bands == 1 else "RGB"
    pil = Image.frombytes(mode, (image.width, image.height), image.write_to_memory())
    pil.save(out, "JPEG", quality=85, progressive=True, subsampling=2 if subsample else 0)
    return out.getvalue()


def eighth(data: bytes) -> pyvips.Image:
    """`data` decoded at 1/8 by the origin's path (Pillow), as the pipeline would get it."""
    header = pyvips.Image.new_from_buffer(data, "")
    decoded = pillow.decode_jpeg(data, header, 8, RenderGuard())
    assert decoded is not None
    return decoded


CASES = {
    "420": (803, 611, 3, True),
    "444": (640, 480, 3, False),
    "grey": (803, 611, 1, True),
    "many-blocks": (1600, 1480, 3, False),  # 37,000 luma blocks: more than one run of 32,767
}


@pytest.mark.parametrize("encoder", ["libvips", "pillow"])
@pytest.mark.parametrize("case", list(CASES))
def test_pixels_are_the_whole_files(case, encoder, monkeypatch):
    width, height, bands, subsample = CASES[case]
    data = progressive(textured(width, height, bands=bands), encoder, subsample)
    stripped = jpegscan.for_eighth_scale(data)
    assert stripped is not None and len(stripped) < len(data) * 0.8  # scans really were dropped
    ours = eighth(data)
    assert max_difference(ours, pyvips.Image.new_from_buffer(data, "", shrink=8)) == 0
    monkeypatch.setattr(jpegscan, "for_eighth_scale", lambda data: None)
    assert max_difference(ours, eighth(data)) == 0


def test_subsampled_chroma_keeps_its_scans():
    """4:2:0 chroma is scaled up from its AC coefficients: only luma's scans go."""
    data = progressive(textured(640, 480), "pillow", subsample=True)
    stripped = jpegscan.for_eighth_scale(data)
    assert stripped is not None
    assert stripped.count(b"\xff\xda") == data.count(b"\xff\xda") - 4 + 1  # 4 luma AC scans -> 1 empty one


@pytest.mark.parametrize(
    "case",
    ["baseline", "restart-interval", "truncated", "not-a-jpeg", "png", "many-segments"],
)
def test_other_files_are_left_alone(case):
    image = textured(320, 240)
    data = {
        "baseline": lambda: image.jpegsave_buffer(Q=85),
        "restart-interval": lambda: image.jpegsave_buffer(Q=85, interlace=True, restart_interval=4),
        "truncated": lambda: progressive(image, "libvips")[:-5000],
        "not-a-jpeg": lambda: b"GIF89a" + bytes(100),
        "png": lambda: image.pngsave_buffer(),
        "many-segments": lambda: b"\xff\xd8" + b"\xff\xfe\x00\x02" * 200_000 + progressive(image, "libvips")[2:],
    }[case]()
    assert jpegscan.for_eighth_scale(data) is None


def test_metadata_segments_stay():
    """EXIF (orientation) and the ICC profile are segments before the scans: all kept."""
    image = textured(400, 300).icc_transform("p3", input_profile="srgb").copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    data = image.jpegsave_buffer(Q=85, interlace=True, keep="all")
    stripped = jpegscan.for_eighth_scale(data)
    assert stripped is not None
    header = pyvips.Image.new_from_buffer(stripped, "")
    assert header.get("orientation") == 6
    assert header.get("icc-profile-data") == pyvips.Image.new_from_buffer(data, "").get("icc-profile-data")


@pytest.mark.parametrize("query", ["w=150&fm=webp", "w=120&h=120&fit=crop&fm=jpg", "w=150&fm=png&sat=40"])
def test_renders_are_byte_for_byte_the_same(query, monkeypatch):
    data = progressive(textured(1280, 960), "libvips")
    spec = parse_query(parse_qsl(query), LIMITS)

    def run() -> bytes:
        return render(data, spec, Accepts.LEGACY, CONFIG, None, RenderGuard()).body

    calls: list[bytes] = []
    real = jpegscan.for_eighth_scale
    monkeypatch.setattr(jpegscan, "for_eighth_scale", lambda data: calls.append(data) or real(data))
    ours = run()
    assert calls  # the render did take the 1/8 path
    monkeypatch.setattr(jpegscan, "for_eighth_scale", lambda data: None)
    assert run() == ours
