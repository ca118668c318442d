"""A progressive JPEG stripped for a 1/8 decode (origin/render/jpegscan.py) decodes to exactly
the pixels of the whole file at 1/8: compared with libvips' own `shrink=8` decode, for the
progression scripts of both encoders here (libvips' mozjpeg and Pillow's libjpeg-turbo),
4:2:0 and 4:4:4 colour, grey, partial blocks and more blocks than one end-of-band run holds."""

from __future__ import annotations

import io
import time
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


def _frame_header(data: bytes) -> int:
    return data.index(b"\xff\xc2")


def _with_frame(data: bytes, components: bytes) -> bytes:
    """`data` with its SOF2 segment's component list replaced (and its length fixed)."""
    at = _frame_header(data)
    length = int.from_bytes(data[at + 2 : at + 4], "big")
    count = len(components) // 3
    header = data[at + 4 : at + 9] + bytes([count]) + components
    return data[:at] + b"\xff\xc2" + (len(header) + 2).to_bytes(2, "big") + header + data[at + 2 + length :]


def _second_frame(data: bytes) -> bytes:
    """A second, empty frame header after the first scan."""
    at = data.index(b"\xff\xda")
    return data[:at] + b"\xff\xc2\x00\x08\x08\x00\x10\x00\x10\x00" + data[at:]


UNEXPECTED = {
    "baseline": lambda data, image: image.jpegsave_buffer(Q=85),
    "restart-interval": lambda data, image: image.jpegsave_buffer(Q=85, interlace=True, restart_interval=4),
    "truncated": lambda data, image: data[:-5000],
    # A cut-off upload "repaired" with an EOI: its last scans never arrived, so libjpeg-turbo smooths
    # the original at 1/8 (3-116 levels off what a rewrite would give).
    "cut-at-a-scan-with-eoi": lambda data, image: data[: data.rindex(b"\xff\xda")] + b"\xff\xd9",
    "cut-in-a-scan-with-eoi": lambda data, image: data[: len(data) // 2] + b"\xff\xd9",
    "not-a-jpeg": lambda data, image: b"GIF89a" + bytes(100),
    "png": lambda data, image: image.pngsave_buffer(),
    "many-segments": lambda data, image: b"\xff\xd8" + b"\xff\xfe\x00\x02" * 200_000 + data[2:],
    "many-fill-bytes": lambda data, image: b"\xff\xd8" + b"\xff" * 5_000_000 + data[2:],
    "second-frame": lambda data, image: _second_frame(data),
    "no-components": lambda data, image: _with_frame(data, b""),
    "zero-sampling": lambda data, image: _with_frame(data, b"\x01\x00\x00\x02\x11\x01\x03\x11\x01"),
    "repeated-ids": lambda data, image: _with_frame(data, b"\x01\x22\x00\x01\x11\x01\x03\x11\x01"),
    "restart-marker-between-segments": lambda data, image: data[:2] + b"\xff\xd0" + data[2:],
    "stuffed-zero-between-segments": lambda data, image: data[:2] + b"\xff\x00" + data[2:],
}


@pytest.mark.parametrize("case", list(UNEXPECTED))
def test_other_files_are_left_alone(case):
    """Anything it does not expect answers None, quickly, and never raises: the caller then
    decodes the file as it is (and libjpeg, or libvips before it, judges it)."""
    image = textured(320, 240)
    data = UNEXPECTED[case](progressive(image, "pillow"), image)
    started = time.process_time()
    assert jpegscan.for_eighth_scale(data) is None
    assert time.process_time() - started < 0.5


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
