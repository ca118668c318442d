"""Attacks on the management API from issue 8, each reproduced against a running server.

Deeply nested DELETE bodies (item 6), racing deletes of one key and bidirectional
controls in keys and download names (item 10), and what clients mean when they send
`DELETE /products/a.png` without a body or a part named `file` (item 15). Each checks
the status, the JSON error naming the problem, and what is stored and served after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from tests.images import png
from tests.origin.http.test_manage import (
    AUTH,
    TOKEN,
    expect_error,
    form,
    form_headers,
    listing,
    multipart,
    snapshot,
    temp_files,
)

BIDI = ["\u202e", "\u202a", "\u202b", "\u202c", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f"]
BIDI += ["\u061c"]


@pytest.fixture
async def api(make_client: Callable[..., Any]) -> Any:
    return await make_client(tokens=[TOKEN])


async def test_delete_body_of_100000_nested_brackets_is_400_not_500(api, store, data_dir):
    store("d/a.png", png())
    before = snapshot(data_dir)
    body = b"[" * 100_000
    async with api.delete("/d", data=body, headers={**AUTH, "Content-Type": "application/json"}) as resp:
        error = await expect_error(resp, 400, "invalid_form")
    assert "nested too deeply" in error["message"]
    assert snapshot(data_dir) == before
    async with api.get("/d/a.png") as resp:  # and the server is still serving
        assert resp.status == 200


async def test_twenty_concurrent_deletes_of_one_key_one_wins(api, store, data_dir):
    store("race/a.png", png())

    async def delete(n: int) -> tuple[int, dict]:
        # Half name it in a JSON batch, half by path without a body: both are the same removal.
        request = (
            api.delete("/race", json={"images": ["a.png"]}, headers=AUTH)
            if n % 2
            else api.delete("/race/a.png", headers=AUTH)
        )
        async with request as resp:
            return resp.status, await resp.json()

    answers = await asyncio.gather(*(delete(n) for n in range(20)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [404] * 19, statuses
    for status, body in answers:
        if status == 200:
            assert body == {"deleted": ["race/a.png"]}
        else:
            assert body["error"]["code"] == "not_found"
            assert body["error"]["keys"] == ["race/a.png"]
    assert snapshot(data_dir) == {}
    assert temp_files(data_dir) == []


async def test_concurrent_overlapping_batch_deletes_never_both_succeed(api, store, data_dir):
    """Two batches sharing a key: at most one removes it; a refused batch puts back what it took."""
    for name in ("a.png", "b.png", "c.png"):
        store(f"o/{name}", png())

    async def delete(names: list[str]) -> int:
        async with api.delete("/o", json={"images": names}, headers=AUTH) as resp:
            return resp.status

    for _ in range(5):
        first, second = await asyncio.gather(delete(["a.png", "b.png"]), delete(["c.png", "b.png"]))
        assert sorted((first, second)) in ([200, 404], [404, 404]) or (first, second) == (404, 200)
        left = set(snapshot(data_dir))
        if first == 200:
            assert left == {"o/c.png"}
        elif second == 200:
            assert left == {"o/a.png"}
        else:
            assert left == {"o/a.png", "o/b.png", "o/c.png"}
        for name in ("a.png", "b.png", "c.png"):
            store(f"o/{name}", png())
    assert temp_files(data_dir) == []


async def test_delete_without_a_body_removes_the_key_the_path_names(api, store, data_dir):
    store("products/a.png", png())
    store("products/b.png", png())
    async with api.delete("/products/a.png", headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"deleted": ["products/a.png"]}
    async with api.get("/products/a.png") as resp:
        assert resp.status == 404
    assert [item["key"] for item in (await listing(api))["images"]] == ["products/b.png"]
    async with api.delete("/products/a.png", headers=AUTH) as resp:
        error = await expect_error(resp, 404, "not_found")
    assert error["keys"] == ["products/a.png"]
    async with api.delete("/products", headers=AUTH) as resp:  # a folder is not an image
        await expect_error(resp, 404, "not_found")
    async with api.delete("/", headers=AUTH) as resp:
        error = await expect_error(resp, 400, "empty_body")
    assert '{"images"' in error["message"]
    assert sorted(snapshot(data_dir)) == ["products/b.png"]


async def test_a_part_named_file_is_accepted_like_data(api, data_dir):
    image = png(12, 7)
    async with api.post("/f", data=form(("a.png", image), field="file"), headers=AUTH) as resp:
        assert resp.status == 201, await resp.text()
        entry = (await resp.json())["images"][0]
    assert (entry["key"], entry["width"], entry["height"]) == ("f/a.png", 12, 7)
    async with api.get("/f/a.png") as resp:
        assert await resp.read() == image
    both = form(("b.png", png()))
    both.add_field("file", png(), filename="c.png", content_type="image/png")
    async with api.post("/f", data=both, headers=AUTH) as resp:
        assert resp.status == 201
    assert sorted(snapshot(data_dir)) == ["f/a.png", "f/b.png", "f/c.png"]


@pytest.mark.parametrize("char", BIDI, ids=[f"U+{ord(c):04X}" for c in BIDI])
async def test_bidi_controls_in_keys_are_refused_naming_them(api, data_dir, char):
    name = f"cat{char}gpj.exe"
    async with api.put("/" + quote(name), data=png(), headers=AUTH) as resp:
        error = await expect_error(resp, 400, "invalid_key")
    assert f"U+{ord(char):04X}" in error["message"] and "bidirectional" in error["message"]
    # The file name as a browser sends it: raw UTF-8 in the part header.
    async with api.post("/up", data=multipart("b", (name, png())), headers=form_headers("b")) as resp:
        error = await expect_error(resp, 400, "invalid_key")
    assert f"U+{ord(char):04X}" in error["message"]
    async with api.get("/" + quote(name)) as resp:
        await expect_error_public(resp, 400, "invalid_key")
    async with api.get("/", params={"prefix": f"a{char}"}, headers=AUTH) as resp:
        await expect_error(resp, 400, "invalid_key")
    assert snapshot(data_dir) == {}


@pytest.mark.parametrize("char", ["\u202e", "\u2067", "\u200f", "\u061c"])
async def test_bidi_controls_in_download_names_are_refused(api, store, char):
    store("p.png", png())
    for base in ("/p.png?", "/p.png?w=10&"):
        async with api.get(base + "dl=" + quote(f"invoice{char}fdp.exe", safe="")) as resp:
            error = await expect_error_public(resp, 400, "invalid_param")
        assert f"U+{ord(char):04X}" in error["message"] and "dl" in error["message"]
    async with api.get("/p.png?dl=" + quote("ordinary name.png")) as resp:
        assert resp.status == 200
        assert "filename*=UTF-8''ordinary%20name.png" in resp.headers["Content-Disposition"]


async def expect_error_public(resp, status: int, code: str) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    body = await resp.json()
    assert body["error"]["code"] == code
    return body["error"]
