"""imgix compatibility as a client sees it over HTTP: spellings share a variant, and the
documented examples of fit=fillmax, ar with fit=fill and dpr=5 give imgix's sizes."""

from __future__ import annotations

import pytest

from tests.images import BLUE, GREEN, RED, close, decode, encode, pixel, quadrants


async def etag_of(client, target: str) -> str:
    async with client.get(target) as resp:
        assert resp.status == 200, (target, resp.status, await resp.text())
        return resp.headers["ETag"]


@pytest.mark.parametrize(
    "spellings",
    [
        ["w=40", "width=40", "w64=NDA", "width64=NDA"],
        ["h=30&fit=crop&w=30", "height=30&f=crop&w=30", "h64=MzA&fit64=Y3JvcA&w=30"],
        ["mark=m.png&mark-alpha=50", "m=m.png&malph=50", "mark64=bS5wbmc&markalpha=50"],
        ["monochrome=f00", "mono=f00", "monochrome=red", "mono64=cmVk"],
        ["invert=1", "inv=true"],
    ],
)
async def test_aliases_and_base64_variants_share_the_canonical_etag(client, store, spellings):
    store("p.png", encode(quadrants(64, 48)))
    store("m.png", encode(quadrants(8, 8)))
    etags = {await etag_of(client, f"/p.png?{query}") for query in spellings}
    assert len(etags) == 1


async def test_one_parameter_in_two_spellings_is_a_duplicate(client, store):
    store("p.png", encode(quadrants(64, 48)))
    async with client.get("/p.png?w=40&width=40") as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "duplicate_param"


async def test_fillmax_pads_to_the_full_box_without_enlarging(client, store):
    # imgix's example: a 300x200 source, w=600&fit=fillmax -> 600x400 with the image 300x200 inside.
    store("p.png", encode(quadrants(300, 200)))
    async with client.get("/p.png?w=600&fit=fillmax&fm=png&bg=000") as resp:
        image = decode(await resp.read())
    assert (image.width, image.height) == (600, 400)
    assert close(pixel(image, 5, 5), (0, 0, 0))  # the canvas
    assert close(pixel(image, 160, 110), RED)  # the image, centred, at its own size
    assert close(pixel(image, 440, 110), GREEN)
    assert close(pixel(image, 160, 290), BLUE)
    assert close(pixel(image, 445, 305), (0, 0, 0))


async def test_ar_with_fit_fill_sets_the_frame(client, store):
    # imgix: fit=fill&w=100&ar=1:1 on a 3:2 source -> 100x100.
    store("p.png", encode(quadrants(300, 200)))
    async with client.get("/p.png?fit=fill&w=100&ar=1:1&fm=png&bg=000") as resp:
        image = decode(await resp.read())
    assert (image.width, image.height) == (100, 100)
    assert close(pixel(image, 50, 5), (0, 0, 0)) and close(pixel(image, 20, 30), RED)


async def test_dpr_5_makes_the_5x_candidate_five_times_wide(client, store):
    store("p.png", encode(quadrants(600, 400)))
    async with client.get("/p.png?w=100&dpr=5") as resp:
        assert decode(await resp.read()).width == 500
