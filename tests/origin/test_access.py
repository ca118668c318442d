"""Presets, presets-only, the width ladder and signed URLs (imgix `s` and HMAC)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from origin.params import parse_query
from origin.presets import PresetError, load_presets
from origin.settings import Settings, defaults
from origin.signing import hmac_signature, imgix_signature
from origin.spec import canonical
from tests.images import decode, jpeg

LIMITS = defaults().output

PRESETS = """
presets:
  card: {w: 40, h: 30, fit: crop, warm: true}
  thumb: {w: 16, fm: png}
"""
HMAC_KEY = "k" * 32
OTHER_KEY = "z" * 40


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "presets.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def presets_file(tmp_path: Path) -> Path:
    return write(tmp_path, PRESETS)


# -- imgix compatibility: the published vectors of imgix's URL builders --------------------


def test_imgix_signature_matches_imgix_builders():
    assert imgix_signature("FOO123bar", "/users/1.png", "") == "6797c24146142d5b40bde3141fd3600c"
    assert imgix_signature("FOO123bar", "/users/1.png", "w=400&h=300") == "c7b86f666a832434dd38577e38cf86d1"
    assert imgix_signature("FOO123bar", "/users/1.png", "h=300&w=400") == "1a4e48641614d1109c6a7af51be23d18"


# -- presets file validation (B3) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("presets:\n  card: {w: 0}\n", "'card', field 'w'"),
        ("presets:\n  card: {wdth: 10}\n", "'card', field 'wdth'"),
        ("presets:\n  card: {fm: svg}\n", "'card', field 'fm'"),
        ("presets:\n  card: {w: 10}\n  card: {w: 20}\n", "duplicate name 'card'"),
        ("presets:\n  card: {preset: thumb}\n", "'card', field 'preset'"),
        ("presets:\n  card: {w: 10, warm: maybe}\n", "'card', field 'warm'"),
        ("presets:\n  card: 12\n", "'card'"),
        ("allowed_widths: [0, 100]\n", "allowed_widths"),
        ("presets_only: 3\n", "presets_only"),
        ("nonsense: 1\n", "nonsense"),
    ],
)
def test_bad_presets_name_the_preset_and_field(tmp_path, text, named):
    with pytest.raises(PresetError, match=named.replace("(", r"\(")):
        load_presets(write(tmp_path, text), defaults().output)


def test_presets_load_and_mark_warm(presets_file):
    book = load_presets(presets_file, defaults().output)
    assert set(book.presets) == {"card", "thumb"}
    assert [p.name for p in book.warm] == ["card"]


def test_a_bad_presets_file_stops_the_app(tmp_path, make_settings):
    from origin.app import create_app

    with pytest.raises(PresetError, match="card"):
        create_app(make_settings(presets=write(tmp_path, "presets:\n  card: {fm: svg}\n")))


# -- presets over HTTP --------------------------------------------------------------------


async def test_preset_is_the_same_variant_as_its_parameters(make_client, store, presets_file):
    client = await make_client(presets=presets_file)
    store("p.jpg", jpeg(80, 60))
    async with client.get("/p.jpg?preset=card") as resp:
        assert resp.status == 200
        etag = resp.headers["ETag"]
        image = decode(await resp.read())
        assert (image.width, image.height) == (40, 30)
    async with client.get("/p.jpg?fit=crop&h=30&w=40") as resp:
        assert resp.headers["ETag"] == etag


async def test_explicit_parameters_refine_a_preset(make_client, store, presets_file):
    client = await make_client(presets=presets_file)
    store("p.jpg", jpeg(80, 60))
    async with client.get("/p.jpg?preset=card&w=20&h=20") as resp:
        image = decode(await resp.read())
        assert (image.width, image.height) == (20, 20)


async def test_unknown_preset_is_400(make_client, store, presets_file):
    client = await make_client(presets=presets_file)
    store("p.jpg", jpeg())
    async with client.get("/p.jpg?preset=nope") as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "unknown_preset"


async def test_presets_only_refuses_free_form_parameters(make_client, store, tmp_path):
    client = await make_client(presets=write(tmp_path, PRESETS + "presets_only: true\n"))
    store("p.jpg", jpeg(80, 60))
    async with client.get("/p.jpg?w=10") as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "params_not_allowed"
    for query in ("preset=card", "preset=card&dpr=2", "preset=card&auto=format", "preset=thumb&dl=x.png", ""):
        async with client.get(f"/p.jpg?{query}") as resp:
            assert resp.status == 200, query
    async with client.get("/p.jpg?preset=card&w=10") as resp:
        assert resp.status == 403


async def test_width_ladder_snaps_unsigned_widths_up(make_client, store, tmp_path):
    client = await make_client(presets=write(tmp_path, "allowed_widths: [20, 50, 100]\n"))
    store("p.jpg", jpeg(200, 100))
    for asked, served in (("15", 20), ("21", 50), ("50", 50), ("3000", 100)):
        async with client.get(f"/p.jpg?w={asked}") as resp:
            assert decode(await resp.read()).width == served, asked
    async with client.get("/p.jpg?w=21&h=21&fit=crop") as resp:
        image = decode(await resp.read())
        assert (image.width, image.height) == (50, 50)


# -- signed URLs ---------------------------------------------------------------------------


async def test_imgix_signed_urls(make_client, store):
    client = await make_client(imgix_tokens=["FOO123bar"], require_signature=True)
    store("users/1.png", jpeg(40, 40))
    good = imgix_signature("FOO123bar", "/users/1.png", "w=20&h=10")
    async with client.get(f"/users/1.png?w=20&h=10&s={good}") as resp:
        assert resp.status == 200
    original = imgix_signature("FOO123bar", "/users/1.png", "")
    async with client.get(f"/users/1.png?s={original}") as resp:
        assert resp.status == 200  # signing covers originals too
    for target in (
        "/users/1.png?w=20&h=10",  # unsigned
        "/users/1.png",  # unsigned original
        f"/users/1.png?w=21&h=10&s={good}",  # signature for other parameters
        f"/users/1.png?w=20&h=10&s={good[:-1]}",  # truncated
        f"/users/1.png?w=20&h=10&s={good}&s={good}",  # given twice
        f"/users/1.png?w=20&h=10&s=0{good[1:]}",  # forged
    ):
        async with client.get(target) as resp:
            assert resp.status in (400, 403), target
            body = await resp.json()
            assert body["error"]["code"] in ("bad_signature", "duplicate_param"), target


@pytest.mark.parametrize("required", [False, True])
async def test_signature_is_checked_before_storage(make_client, required):
    client = await make_client(imgix_tokens=["FOO123bar"], require_signature=required)
    async with client.get("/does/not/exist.jpg?w=10&s=" + "0" * 32) as resp:
        assert resp.status == 403  # not 404: storage was never asked


async def refused(client, target: str, problem: str) -> None:
    async with client.get(target) as resp:
        assert resp.status == 403, target
        error = (await resp.json())["error"]
        assert error["code"] == "bad_signature", target
        assert problem in error["message"], (target, error["message"])


async def test_signing_rollout_serves_unsigned_urls_and_checks_signed_ones(make_client, store, presets_file):
    """require_signature off (the default) with a key: `s` is verified when sent, unsigned URLs are served."""
    client = await make_client(signing_keys=[HMAC_KEY], presets=presets_file)
    store("a.jpg", jpeg(40, 40))
    sig = hmac_signature(HMAC_KEY.encode(), "a.jpg", canonical(parse_query([("w", "20")], LIMITS)), None)
    for target in ("/a.jpg?w=20", "/a.jpg", "/a.jpg?preset=thumb", f"/a.jpg?w=20&s={sig}"):
        async with client.get(target) as resp:
            assert resp.status == 200, target
    await refused(client, f"/a.jpg?w=21&s={sig}", "does not match")  # signed for other parameters
    await refused(client, "/a.jpg?w=20&s=" + "0" * 43, "does not match")
    await refused(client, "/a.jpg?s=", "must be signed")  # an empty `s` is a signature that is not there


async def test_required_signature_refuses_every_unsigned_url(make_client, store, presets_file):
    """require_signature on: transformed URLs, originals and presets alike (imgix's secure sources)."""
    client = await make_client(signing_keys=[HMAC_KEY], presets=presets_file, require_signature=True)
    store("a.jpg", jpeg(40, 40))
    for target in ("/a.jpg?w=20", "/a.jpg", "/a.jpg?preset=thumb"):
        await refused(client, target, "must be signed")
    for params in ([("w", "20")], [], [("w", "16"), ("fm", "png")]):
        sig = hmac_signature(HMAC_KEY.encode(), "a.jpg", canonical(parse_query(params, LIMITS)), None)
        query = "&".join(f"{name}={value}" for name, value in params)
        async with client.get(f"/a.jpg?{query}&s={sig}" if query else f"/a.jpg?s={sig}") as resp:
            assert resp.status == 200, params
    thumb = hmac_signature(
        HMAC_KEY.encode(), "a.jpg", canonical(parse_query([("w", "16"), ("fm", "png")], LIMITS)), None
    )
    async with client.get(f"/a.jpg?preset=thumb&s={thumb}") as resp:
        assert resp.status == 200  # a preset signs as the parameters it stands for
    await refused(client, f"/a.jpg?w=21&s={thumb}", "does not match")


async def test_without_keys_a_signature_is_ignored(make_client, store):
    client = await make_client()
    store("a.jpg", jpeg(40, 40))
    async with client.get("/a.jpg?w=20&s=" + "0" * 43) as resp:
        assert resp.status == 200  # nothing to check it against, as imgix on a source without a token


async def test_hmac_signed_urls_with_expiry_and_rotation(make_client, store):
    client = await make_client(signing_keys=[HMAC_KEY, OTHER_KEY])
    store("a.jpg", jpeg(40, 40))
    spec = canonical(parse_query([("w", "20")], LIMITS))
    future = str(int(time.time()) + 600)
    for key in (HMAC_KEY, OTHER_KEY):
        sig = hmac_signature(key.encode(), "a.jpg", spec, future)
        async with client.get(f"/a.jpg?w=20&expires={future}&s={sig}") as resp:
            assert resp.status == 200
        # The same logical request spelled differently verifies: the canonical spec is signed.
        async with client.get(f"/a.jpg?expires={future}&w=20.0&s={sig}") as resp:
            assert resp.status == 200
    past = str(int(time.time()) - 1)
    expired = hmac_signature(HMAC_KEY.encode(), "a.jpg", spec, past)
    async with client.get(f"/a.jpg?w=20&expires={past}&s={expired}") as resp:
        assert resp.status == 404  # gone, as imgix answers an expired URL
        assert "expired" in (await resp.json())["error"]["message"]
    async with client.get(
        f"/a.jpg?w=20&expires={int(future) + 1}&s={hmac_signature(HMAC_KEY.encode(), 'a.jpg', spec, future)}"
    ) as resp:
        assert resp.status == 403
    wrong_key = hmac_signature(b"x" * 32, "a.jpg", spec, future)
    async with client.get(f"/a.jpg?w=20&expires={future}&s={wrong_key}") as resp:
        assert resp.status == 403


async def test_a_signed_url_may_use_free_parameters_in_presets_only_mode(make_client, store, tmp_path):
    client = await make_client(
        presets=write(tmp_path, PRESETS + "presets_only: true\nallowed_widths: [32]\n"), signing_keys=[HMAC_KEY]
    )
    store("a.jpg", jpeg(40, 40))
    sig = hmac_signature(HMAC_KEY.encode(), "a.jpg", canonical(parse_query([("w", "17")], LIMITS)), None)
    async with client.get(f"/a.jpg?w=17&s={sig}") as resp:
        assert resp.status == 200
        assert decode(await resp.read()).width == 17  # signed: not snapped to the ladder


# -- boot checks (B4) ----------------------------------------------------------------------


def test_short_hmac_keys_are_refused():
    with pytest.raises(ValidationError, match="32 bytes"):
        Settings(signing_keys=["short"])


def test_required_signature_needs_a_key():
    with pytest.raises(ValidationError, match="require_signature"):
        Settings(require_signature=True)
    assert Settings(require_signature=True, imgix_tokens=["t"]).require_signature


def test_imgix_signature_is_plain_md5():
    assert imgix_signature("t", "/k", "a=1") == hashlib.md5(b"t/k?a=1").hexdigest()
