"""imgix compatibility as a client sees it over HTTP: spellings share a variant, and the
documented examples of fit=fillmax, ar with fit=fill and dpr=5 give imgix's sizes."""

from __future__ import annotations

import pytest

from tests.images import BLUE, GREEN, RED, close, decode, encode, flat, pixel, quadrants


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


async def test_fill_max_source_keeps_the_fillmax_canvas_within_the_source(client, store):
    # imgix's fill-max page: 300x200 with w=400&h=150 -> a 300x150 canvas (400x150 without it).
    store("p.png", encode(quadrants(300, 200)))
    async with client.get("/p.png?w=400&h=150&fit=fillmax&fill-max=source&fm=png&bg=000") as resp:
        image = decode(await resp.read())
    assert (image.width, image.height) == (300, 150)
    assert close(pixel(image, 2, 75), (0, 0, 0))  # 37 px of padding each side, no more
    assert close(pixel(image, 60, 30), RED) and close(pixel(image, 240, 30), GREEN)
    async with client.get("/p.png?w=400&h=150&fit=fillmax&fill-max=canvas") as resp:
        assert resp.status == 400
        assert "fill-max takes one value: source" in (await resp.json())["error"]["message"]


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


# -- expires -------------------------------------------------------------------------------


async def test_expires_past_is_a_404_and_before_it_max_age_is_bounded(client, store):
    import time

    store("p.png", encode(quadrants(64, 48)))
    past = int(time.time()) - 5
    async with client.get(f"/p.png?w=20&expires={past}") as resp:
        assert resp.status == 404
        assert "expired" in (await resp.json())["error"]["message"]
    async with client.get(f"/p.png?expires={past}") as resp:
        assert resp.status == 404
    soon = int(time.time()) + 120
    for target in (f"/p.png?w=20&expires={soon}", f"/p.png?expires={soon}"):
        async with client.get(target) as resp:
            assert resp.status == 200
            control = resp.headers["Cache-Control"]
        age = int(control.split("max-age=")[1].split(",")[0])
        assert 110 <= age <= 120 and "stale-" not in control, control
    async with client.get("/p.png?w=20&expires=soon") as resp:
        assert resp.status == 400


async def test_expires_is_covered_by_an_imgix_signature(make_client, store):
    import time

    from origin.signing import imgix_signature

    client = await make_client(imgix_tokens=["tok"])
    store("p.png", encode(quadrants(64, 48)))
    soon = int(time.time()) + 300
    query = f"w=20&expires={soon}"
    sig = imgix_signature("tok", "/p.png", query)
    async with client.get(f"/p.png?{query}&s={sig}") as resp:
        assert resp.status == 200
    async with client.get(f"/p.png?w=20&expires={soon + 3600}&s={sig}") as resp:
        assert resp.status == 403  # a later expiry is not the signed URL


# -- client hints ------------------------------------------------------------------------


async def test_ch_uses_the_hints_and_names_them_in_vary_and_accept_ch(client, store):
    store("p.png", encode(quadrants(400, 300)))
    async with client.get("/p.png?ch=width,dpr,save-data&fm=jpg", headers={"Width": "200"}) as resp:
        assert decode(await resp.read()).width == 200
        assert "Width" in resp.headers["Vary"] and "DPR" in resp.headers["Vary"] and "Save-Data" in resp.headers["Vary"]
        assert "Width" in resp.headers["Accept-CH"]
        hinted = resp.headers["ETag"]
    async with client.get("/p.png?ch=dpr&w=100", headers={"DPR": "2"}) as resp:
        assert decode(await resp.read()).width == 200
        assert resp.headers["Vary"] == "Sec-CH-DPR, DPR"
    async with client.get("/p.png?ch=dpr&w=100&dpr=1", headers={"DPR": "3"}) as resp:
        assert decode(await resp.read()).width == 100  # the URL's own dpr wins
    async with client.get("/p.png?ch=width,dpr,save-data&fm=jpg&w=200") as resp:
        assert resp.headers["ETag"] == hinted  # hint or URL, one variant
    async with client.get("/p.png?ch=save-data&fm=jpg", headers={"Save-Data": "on"}) as resp:
        saved = len(await resp.read())
    async with client.get("/p.png?ch=save-data&fm=jpg") as resp:
        assert saved < len(await resp.read())
    async with client.get("/p.png?w=50", headers={"Width": "300"}) as resp:
        assert "Accept-CH" not in resp.headers and decode(await resp.read()).width == 50


# -- a mask image is another stored key ----------------------------------------------------


async def test_mask_key_is_read_from_storage_and_versions_the_variant(client, store):
    import pyvips

    store("p.png", encode(quadrants(60, 40)))
    circle = (pyvips.Image.black(60, 40) + 0).draw_circle(255, 30, 20, 15, fill=True).cast("uchar")
    store("masks/dot.png", encode(circle))
    async with client.get("/p.png?mask=masks/dot.png&fm=png") as resp:
        assert resp.status == 200
        first = resp.headers["ETag"]
        image = decode(await resp.read())
    assert pixel(image, 1, 1)[3] == 0 and pixel(image, 30, 20)[3] == 255
    store("masks/dot.png", encode(circle.invert()))
    async with client.get("/p.png?mask=masks/dot.png&fm=png") as resp:
        assert resp.headers["ETag"] != first
    async with client.get("/p.png?mask=masks/none.png") as resp:
        assert resp.status == 400 and "mask" in (await resp.json())["error"]["message"]
    async with client.get("/p.png?mask=https://example.com/m.png") as resp:
        assert "mask must be a storage key, not a URL" in (await resp.json())["error"]["message"]


async def test_blurhash_and_palette_content_types(client, store):
    store("p.png", encode(quadrants(60, 40)))
    async with client.get("/p.png?fm=blurhash") as resp:
        assert resp.content_type == "text/plain" and len(await resp.text()) == 28
    async with client.get("/p.png?palette=css") as resp:
        assert resp.content_type == "text/css" and ".image-fg-1" in await resp.text()
    async with client.get("/p.png?palette=json&colors=2") as resp:
        assert resp.content_type == "application/json" and len((await resp.json())["colors"]) == 2


async def test_dpr_2_draws_the_text_twice_as_tall_and_folds_into_one_variant(client, store):
    """imgix's text lengths are CSS pixels: at dpr=2 the caption is twice as tall, and the URL is
    the same variant as the 1x one with every length doubled."""
    store("white.png", encode(flat(400, 200, (255, 255, 255))))
    caption = "txt=HHHH&txt-size=20&txt-align=top,left&fm=png"

    async def ink(query: str) -> tuple[str, tuple[int, int, int, int]]:
        async with client.get(f"/white.png?{query}") as resp:
            assert resp.status == 200, await resp.text()
            trim = decode(await resp.read()).find_trim(threshold=10, background=[255, 255, 255])
            return resp.headers["ETag"], tuple(trim)

    _, (_, top1, _, height1) = await ink(f"w=200&{caption}")
    etag2, (_, top2, _, height2) = await ink(f"w=200&dpr=2&{caption}")
    assert height2 == pytest.approx(2 * height1, abs=2) and top2 == pytest.approx(2 * top1, abs=2)
    folded, _ = await ink("w=400&txt=HHHH&txt-size=40&txt-pad=20&txt-align=top,left&fm=png")
    assert folded == etag2
