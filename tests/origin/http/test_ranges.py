"""Range headers from hostile clients (issue 8 item 5): never a 500, ASCII digits only."""

from __future__ import annotations

import pytest

from origin.errors import RangeNotSatisfiable
from origin.http.headers import byte_range
from tests.images import png

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=-5", (995, 999)),
        ("bytes=990-", (990, 999)),
        ("bytes=0-5000", (0, 999)),
        ("bytes=-", None),  # names no range: the whole body
        ("bytes=²-", None),  # a superscript two: str.isdigit says yes, int() raises
        ("bytes=١-٥", None),  # Arabic-Indic digits: int() would read them as 1-5
        ("bytes=-٥", None),
        ("bytes=0-9,20-29", None),
        ("bytes=a-b", None),
        ("items=0-9", None),
        ("bytes=0x1-2", None),
        ("bytes=+1-2", None),
        ("bytes= 1-2", (1, 2)),
    ],
)
def test_byte_range_table(header, expected):
    assert byte_range(header, SIZE) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=-0", "bytes=5-4"])
def test_byte_range_unsatisfiable(header):
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, SIZE)


@pytest.mark.parametrize(
    ("header", "status", "span"),
    [
        ("bytes=²-", 200, None),
        ("bytes=١-٥", 200, None),
        ("bytes=-", 200, None),
        ("bytes=1-5", 206, (1, 5)),
    ],
)
async def test_hostile_range_over_http(client, store, header, status, span):
    data = png(40, 30)
    store("r.png", data)
    async with client.get("/r.png", headers={"Range": header}) as resp:
        assert resp.status == status
        body = await resp.read()
        if span is None:
            assert body == data and "Content-Range" not in resp.headers
        else:
            assert body == data[span[0] : span[1] + 1]
            assert resp.headers["Content-Range"] == f"bytes {span[0]}-{span[1]}/{len(data)}"
