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
_NO_LENGTH = frozenset({0x00, 0x01, *range(0xD0, 0xD8), _SOI})
"""Markers without a length field (or none at all) where a segment should start: libjpeg reads
them differently from a segment, so a file holding one is left as it is."""
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
"""Where a scan's entropy-coded data ends: an 0xFF that is not a stuffed zero, a restart or fill."""
_MAX_RUN = 32767
"""The longest end-of-band run one code holds (EOB14 and 14 extra bits)."""
_EOB_TABLE_ID = 0
_MAX_STEPS = 1024
"""Real files have tens of segments (ten scans, their tables, a few APPn); a file of a million
4-byte segments or fill bytes would keep this loop busy for seconds, so past this many steps
the file is left as it is."""
_ALL_COEFFICIENTS = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class _Component:
    ident: int
    blocks: int
    full_resolution: bool


class _Unexpected(Exception):
    """The file is not laid out as this module expects: decode it as it is."""


def for_eighth_scale(data: bytes) -> bytes | None:
    """`data` (a progressive JPEG) with the AC scans of its full-resolution components replaced
    by empty ones; None where that does not apply or the file is not as expected.

    Only a file whose scans bring every coefficient of every component to full precision is
    rewritten: an unfinished one (a cut-off upload with an EOI appended, a scan script that
    never sends some coefficients) is what libjpeg-turbo smooths, and it would smooth the
    original and the rewrite differently."""
    try:
        return _rewrite(data)
    except (_Unexpected, struct.error, IndexError, KeyError, ValueError, ZeroDivisionError):
        return None


def _rewrite(data: bytes) -> bytes | None:
    if data[:2] != b"\xff" + bytes([_SOI]):
        return None
    parts: list[bytes] = [data[:2]]
    components: dict[int, _Component] = {}
    complete: dict[int, int] = {}
    """Per component, a bit per coefficient (zigzag order) that some scan sent at full precision."""
    emptied: set[int] = set()
    pos, end = 2, len(data)
    for _ in range(_MAX_STEPS):
        if pos + 1 >= end or data[pos] != 0xFF:
            return None  # no EOI (a truncated file is the decoder's to judge), or not a marker
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _NO_LENGTH or marker in _OTHER_FRAMES:
            return None
        if marker == _EOI:
            finished = components and all(bits == _ALL_COEFFICIENTS for bits in complete.values())
            if not emptied or not finished:
                return None
            parts.extend(_empty_scan(components[ident]) for ident in sorted(emptied))
            parts.append(data[pos : pos + 2])
            return b"".join(parts)
        (length,) = struct.unpack_from(">H", data, pos + 2)
        segment_end = pos + 2 + length
        if length < 2 or segment_end > end:
            return None
        if marker == _DRI and struct.unpack_from(">H", data, pos + 4)[0]:
            return None  # restart intervals: the empty scan would need its markers
        if marker == _SOF2:
            if components:
                return None  # a second frame
            components = _components(data, pos, length)
            complete = dict.fromkeys(components, 0)
        if marker != _SOS:
            parts.append(data[pos:segment_end])
            pos = segment_end
            continue
        idents, first, last, low_bit = _scan_header(data, pos, length, components)
        scan_end = _scan_end(data, segment_end)
        if low_bit == 0:
            for ident in idents:
                complete[ident] |= ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)
        if first > 0 and len(idents) == 1 and components[idents[0]].full_resolution:
            emptied.add(idents[0])
        else:
            parts.append(data[pos:scan_end])
        pos = scan_end
    return None  # too many steps


def _components(data: bytes, pos: int, length: int) -> dict[int, _Component]:
    """The frame header's components, with the block count of a non-interleaved scan of each."""
    precision, height, width, count = struct.unpack_from(">BHHB", data, pos + 4)
    if precision != 8 or not count or length != 8 + 3 * count or not width or not height:
        raise _Unexpected("not an 8-bit frame header this module reads")
    raw = [(data[pos + 10 + 3 * i], data[pos + 11 + 3 * i] >> 4, data[pos + 11 + 3 * i] & 15) for i in range(count)]
    if len({ident for ident, _, _ in raw}) != count or any(not (1 <= h <= 4 and 1 <= v <= 4) for _, h, v in raw):
        raise _Unexpected("repeated component ids or sampling factors outside 1-4")
    h_max = max(h for _, h, _ in raw)
    v_max = max(v for _, _, v in raw)
    components = {}
    for ident, h, v in raw:
        columns = math.ceil(math.ceil(width * h / h_max) / 8)
        rows = math.ceil(math.ceil(height * v / v_max) / 8)
        components[ident] = _Component(ident, columns * rows, (h, v) == (h_max, v_max))
    return components


def _scan_header(
    data: bytes, pos: int, length: int, components: dict[int, _Component]
) -> tuple[list[int], int, int, int]:
    """The scan's components, spectral range (first, last) and successive approximation low bit."""
    count = data[pos + 4]
    if not components or not 1 <= count <= 4 or length != 6 + 2 * count:
        raise _Unexpected("a scan header this module does not read")
    idents = [data[pos + 5 + 2 * i] for i in range(count)]
    first, last, approximation = data[pos + 5 + 2 * count : pos + 8 + 2 * count]
    if any(ident not in components for ident in idents) or not first <= last <= 63:
        raise _Unexpected("a scan of an unknown component or an empty band")
    return idents, first, last, approximation & 15


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
