"""Where an image file's own structure ends (pure): nothing may follow it in an upload.

A stored original is served byte for byte, so an image with an HTML page appended
(`<jpeg bytes><img src=x onerror=...>`) is a polyglot whatever the page says, in any
encoding: a blocklist of tags cannot be complete. Instead each format's container is
walked to the end it declares, and an upload with anything but zero padding after
that end is refused:

- JPEG: markers and their lengths from SOI, the entropy-coded data of each scan, up to
  EOI. An EXIF thumbnail (with its own SOI and EOI) lies inside its APP1 segment, so it
  is skipped with it. Complete JPEG images may follow (MPF: a phone's gain map or
  second view), each walked the same way.
- PNG: chunks (length, type, data, CRC) up to IEND; any chunk may come before it.
- GIF: header, colour tables, extension and image blocks (sub-blocks) up to the trailer.
- WebP: the RIFF size in its header.
- AVIF: ISO-BMFF top-level boxes, each of a type an AVIF file holds, up to the end.

A file whose structure is cut short (truncated) ends where its bytes end: the full
decode that follows is what refuses it (422).
"""

from __future__ import annotations

import re

_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
"""In entropy-coded data, a marker is 0xFF followed by anything but a stuffed 0x00, a
restart marker (RSTn), or another 0xFF (fill)."""
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
"""TEM and RST0-7 carry no length."""
_AVIF_BOXES = frozenset(
    {b"ftyp", b"meta", b"mdat", b"moov", b"free", b"skip", b"uuid", b"moof", b"mfra", b"styp", b"sidx", b"meco"}
    | {b"pdin", b"prft", b"etyp", b"ssix", b"emsg", b"otyp"}
)


def trailing_bytes(data: bytes, fmt: str) -> int:
    """How many bytes follow the image's own end, zero padding aside (0: nothing does)."""
    end = _END[fmt](data)
    return len(data[end:].rstrip(b"\x00"))


def _jpeg_end(data: bytes) -> int:
    pos = _one_jpeg(data, 0)
    # MPF (CIPA DC-007): further complete JPEG images after the first one's EOI.
    while pos < len(data) and data.startswith(b"\xff\xd8\xff", pos):
        pos = _one_jpeg(data, pos)
    return pos


def _one_jpeg(data: bytes, pos: int) -> int:
    """The offset after the EOI of the JPEG image starting at `pos` (its SOI)."""
    size = len(data)
    pos += 2
    while pos < size:
        if data[pos] != 0xFF:
            return pos  # not a marker where one must be: the structure ends here
        while pos < size and data[pos] == 0xFF:
            pos += 1  # fill bytes
        if pos >= size:
            return size
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return pos
        if marker in _JPEG_STANDALONE:
            continue
        if pos + 2 > size:
            return size
        pos += int.from_bytes(data[pos : pos + 2], "big")
        if marker == 0xDA:  # SOS: entropy-coded data runs to the next real marker
            found = _JPEG_MARKER.search(data, min(pos, size))
            if found is None:
                return size
            pos = found.start()
    return min(pos, size)


def _png_end(data: bytes) -> int:
    pos, size = 8, len(data)
    while pos + 8 <= size:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return min(pos, size)
    return min(pos, size)


def _gif_end(data: bytes) -> int:
    size = len(data)
    if size < 13:
        return size
    pos = 13 + _colour_table(data[10])
    while pos < size:
        block = data[pos]
        if block == 0x3B:  # trailer
            return pos + 1
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor, local colour table, LZW code size, sub-blocks
            if pos + 10 > size:
                return size
            pos = _sub_blocks(data, pos + 10 + _colour_table(data[pos + 9]) + 1)
        else:
            return pos  # not a block: the structure ends here
    return min(pos, size)


def _colour_table(flags: int) -> int:
    return 3 * 2 ** ((flags & 0x07) + 1) if flags & 0x80 else 0


def _sub_blocks(data: bytes, pos: int) -> int:
    size = len(data)
    while pos < size:
        length = data[pos]
        pos += 1 + length
        if length == 0:
            return pos
    return size


def _webp_end(data: bytes) -> int:
    declared = 8 + int.from_bytes(data[4:8], "little")
    return min(declared + (declared & 1), len(data))


def _avif_end(data: bytes) -> int:
    pos, size = 0, len(data)
    while pos + 8 <= size:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind not in _AVIF_BOXES:
            return pos  # not a box an AVIF file holds: the structure ends here
        if length == 1:  # 64-bit size
            if pos + 16 > size:
                return size
            length = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif length == 0:  # runs to the end of the file
            return size
        if length < 8:
            return pos
        pos += length
    return min(pos, size)


_END = {"jpg": _jpeg_end, "png": _png_end, "gif": _gif_end, "webp": _webp_end, "avif": _avif_end}
