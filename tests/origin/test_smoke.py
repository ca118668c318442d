"""The service starts, serves an original byte for byte and a resized variant."""

from __future__ import annotations

from tests.images import decode, jpeg, magic


async def test_original_and_variant(client, store):
    data = jpeg(64, 48)
    store("a/photo.jpg", data)
    async with client.get("/a/photo.jpg") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/jpeg"
        assert await resp.read() == data
    async with client.get("/a/photo.jpg?w=32&fm=png") as resp:
        assert resp.status == 200
        body = await resp.read()
        assert magic(body) == "png"
        assert (decode(body).width, decode(body).height) == (32, 24)


async def test_health(client):
    async with client.get("/_/health") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"
