"""A progressive JPEG without the scans a 1/8-scale decode never reads.

Decoded at 1/8, libjpeg turns each 8x8 block of a full-resolution component into one pixel
from its DC coefficient alone; only subsampled components (4:2:0 chroma) are scaled up from
their first AC coefficients. Yet a progressive file keeps most of its bytes in the AC scans
of full-resolution components (luma; all three at 4:4:4), and the decoder Huffman-decodes
every one of them: 5.9 of the 6.7 MB of ../shared/corpus/L-jpg-infinitesea.jpg.

`for_eighth_scale` drops those scans and, in their place, appends one AC scan per such
component that codes every block as empty (a few bytes of end-of-band runs). The appended
scan matters: a component whose AC coefficients never arrived is what libjpeg-turbo's block
smoothing (on by default for progressive files) takes for an unfinished download, and it
would then estimate the missing coefficients and adjust the DC ones too. With every
coefficient accounted for there is nothing to smooth, and the pixels are the original
file's 1/8 decode exactly (tests/origin/render/test_jpegscan.py compares them with libvips').

Pure bytes in, bytes out. Anything it does not expect (baseline or arithmetic coding,
restart intervals, a malformed segment) answers None and the caller decodes the file as is.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

_SOI, _EOI, _SOS, _SOF2, _DRI = 0xD8, 0xD9, 0xDA, 0xC2, 0xDD
_OTHER_FRAMES = frozenset({0xC0, 0xC1, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
"""Every SOF but SOF2: baseline, extended, lossless, hierarchical, arithmetic."""
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
"""Where a scan's entropy-coded data ends: an 0xFF that is not a stuffed zero, a restart or fill."""
_MAX_RUN = 32767
"""The longest end-of-band run one code holds (EOB14 and 14 extra bits)."""
_EOB_TABLE_ID = 0
_MAX_SEGMENTS = 1024
"""Real files have tens (ten scans, their tables, a few APPn); a file of a million 4-byte
segments would keep this loop busy for seconds, so past this many the file is left as it is."""


@dataclass(frozen=True, slots=True)
class _Component:
    ident: int
    blocks: int
    full_resolution: bool


def for_eighth_scale(data: bytes) -> bytes | None:
    """`data` (a progressive JPEG) with the AC scans of its full-resolution components replaced
    by empty ones; None where that does not apply or the file is not as expected."""
    if data[:2] != b"\xff" + bytes([_SOI]):
        return None
    parts: list[bytes] = [data[:2]]
    components: dict[int, _Component] = {}
    emptied: set[int] = set()
    pos, end = 2, len(data)
    try:
        while pos + 1 < end and len(parts) < _MAX_SEGMENTS:
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte before a marker
                pos += 1
                continue
            if marker == _EOI:
                if not emptied:
                    return None  # nothing to gain
                parts.extend(_empty_scan(components[ident]) for ident in sorted(emptied))
                parts.append(data[pos : pos + 2])
                return b"".join(parts)
            (length,) = struct.unpack_from(">H", data, pos + 2)
            segment_end = pos + 2 + length
            if marker in _OTHER_FRAMES:
                return None
            if marker == _DRI and struct.unpack_from(">H", data, pos + 4)[0]:
                return None  # restart intervals: the empty scan would need its markers
            if marker == _SOF2:
                components = _components(data, pos)
            if marker != _SOS:
                parts.append(data[pos:segment_end])
                pos = segment_end
                continue
            if not components:
                return None  # a scan before the frame header
            scan_end = _scan_end(data, segment_end)
            count = data[pos + 4]
            idents = [data[pos + 5 + 2 * i] for i in range(count)]
            spectral_start = data[pos + 5 + 2 * count]
            if spectral_start > 0 and count == 1 and components[idents[0]].full_resolution:
                emptied.add(idents[0])
            else:
                parts.append(data[pos:scan_end])
            pos = scan_end
    except (struct.error, IndexError, KeyError):
        return None
    return None  # no EOI (a truncated file is the decoder's to judge), or too many segments


def _components(data: bytes, pos: int) -> dict[int, _Component]:
    """The frame header's components, with the block count of a non-interleaved scan of each."""
    height, width, count = struct.unpack_from(">HHB", data, pos + 5)
    raw = [(data[pos + 10 + 3 * i], data[pos + 11 + 3 * i]) for i in range(count)]
    h_max = max(sampling >> 4 for _, sampling in raw)
    v_max = max(sampling & 15 for _, sampling in raw)
    components = {}
    for ident, sampling in raw:
        h, v = sampling >> 4, sampling & 15
        columns = math.ceil(math.ceil(width * h / h_max) / 8)
        rows = math.ceil(math.ceil(height * v / v_max) / 8)
        components[ident] = _Component(ident, columns * rows, (h, v) == (h_max, v_max))
    return components


def _scan_end(data: bytes, start: int) -> int:
    found = _NEXT_MARKER.search(data, start)
    if found is None:
        raise IndexError("a scan runs to the end of the file")
    return found.start()


def _empty_scan(component: _Component) -> bytes:
    """DHT + SOS + data: AC coefficients 1-63 of `component`, at full precision, all zero."""
    # A table of the 15 end-of-band-run symbols (EOB0..EOB14), each a 4-bit code: symbol r is code r.
    symbols = bytes(r << 4 for r in range(15))
    counts = bytes([0, 0, 0, len(symbols)] + [0] * 12)
    table = bytes([0x10 | _EOB_TABLE_ID]) + counts + symbols
    dht = b"\xff\xc4" + struct.pack(">H", 2 + len(table)) + table
    sos = b"\xff\xda" + struct.pack(">HBBBBBB", 8, 1, component.ident, _EOB_TABLE_ID, 1, 63, 0)
    return dht + sos + _eob_runs(component.blocks)


def _eob_runs(blocks: int) -> bytes:
    """`blocks` empty blocks as end-of-band runs: code r (4 bits), then run - 2**r in r bits."""
    bits, size = 0, 0
    while blocks:
        run = min(blocks, _MAX_RUN)
        r = run.bit_length() - 1
        bits = (bits << (4 + r)) | (r << r) | (run - (1 << r))
        size += 4 + r
        blocks -= run
    pad = -size % 8
    bits, size = (bits << pad) | ((1 << pad) - 1), size + pad  # padded with 1s, as the standard says
    raw = bits.to_bytes(size // 8, "big")
    return raw.replace(b"\xff", b"\xff\x00")
