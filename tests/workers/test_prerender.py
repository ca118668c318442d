"""The worker's pre-render and invalidation, and the origin serving what it stored (X-Cache: derived).

Each test drives the handler with the events a source would deliver and then looks at
derived storage directly and through a real origin on a test server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from origin.derived import DerivedStore
from origin.errors import StorageError
from origin.formats import Accepts
from origin.http.appkeys import POOL, SERVICE
from origin.settings import Settings
from origin.spec import TransformSpec
from origin.storage import LocalStorage
from origin.storage_events import StorageEvent
from origin.variant import VariantRequest
from tests.images import jpeg, magic, png
from tests.origin.http.test_hostile import png_header_only
from workers.handler import Handler, build_handler
from workers.prerender import Outcome

TOKEN = "t0k3n"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PRESETS = """
presets:
  card: {w: 40, h: 30, fit: crop, auto: format, warm: true}
  small: {w: 20, fm: png, warm: true}
  hero: {w: 60}
"""
VARIANTS_PER_SOURCE = 4
"""card in AVIF, WebP and legacy, small once."""
WEBP = {"Accept": "image/webp,image/*"}


@pytest.fixture
def presets(tmp_path: Path) -> Path:
    path = tmp_path / "presets.yaml"
    path.write_text(PRESETS)
    return path


@pytest.fixture
def settings(make_settings: Callable[..., Settings], presets: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return make_settings(presets=presets, tokens=[TOKEN], **overrides)

    return build


@pytest.fixture
async def handler(settings: Callable[..., Settings]) -> AsyncIterator[Handler]:
    async with build_handler(settings().configs()) as opened:
        yield opened


def derived_keys(data_dir: Path, key: str) -> set[str]:
    folder = data_dir / "_" / "derived" / key
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


async def created(handler: Handler, data_dir: Path, key: str) -> Outcome:
    info = await LocalStorage(data_dir).head(key)
    return await handler.handle(StorageEvent("created", key, info.etag, "origin"))


# --------------------------------------------------------------------------- served from derived


async def test_a_prerendered_variant_is_served_from_derived_storage(handler, store, data_dir, aiohttp_client, settings):
    from origin.app import create_app

    store("a/shoe.jpg", jpeg(120, 90))
    assert await created(handler, data_dir, "a/shoe.jpg") is Outcome.RENDERED
    assert (await handler.open()).resources.pool.renders == VARIANTS_PER_SOURCE
    assert len(derived_keys(data_dir, "a/shoe.jpg")) == VARIANTS_PER_SOURCE

    client = await aiohttp_client(create_app(settings()))
    async with client.get("/a/shoe.jpg?preset=card", headers=WEBP) as resp:
        assert resp.status == 200
        assert resp.headers["X-Cache"] == "derived"
        assert resp.headers["Content-Type"] == "image/webp"
        assert resp.headers["Vary"] == "Accept"
        assert resp.headers["Cache-Tag"] == "a/shoe.jpg"
        etag = resp.headers["ETag"].strip('"')
        body = await resp.read()
    assert body == (data_dir / "_/derived/a/shoe.jpg" / etag).read_bytes()
    async with client.get("/a/shoe.jpg?fit=crop&h=30&w=40&auto=format") as resp:  # same spec, legacy Accept
        assert resp.headers["X-Cache"] == "derived"
        assert magic(await resp.read()) == "jpg" and "Vary" in resp.headers
    async with client.get("/a/shoe.jpg?preset=small") as resp:
        assert resp.headers["X-Cache"] == "derived" and resp.headers["Content-Type"] == "image/png"
        assert "Vary" not in resp.headers
    async with client.get("/a/shoe.jpg?preset=card", headers=WEBP) as resp:
        assert resp.headers["X-Cache"] == "memory" and await resp.read() == body
    async with client.get("/a/shoe.jpg?preset=hero") as resp:  # not warm: rendered on demand
        assert resp.headers["X-Cache"] == "miss"
    assert client.app[POOL].renders == 1


async def test_an_overwrite_never_serves_the_old_variant_and_prunes_it(
    handler, store, data_dir, aiohttp_client, settings
):
    from origin.app import create_app

    store("shoe.png", png(120, 90))
    await created(handler, data_dir, "shoe.png")
    old = derived_keys(data_dir, "shoe.png")
    api = await aiohttp_client(create_app(settings()))
    async with api.get("/shoe.png") as resp:
        current = resp.headers["ETag"]
    async with api.put("/shoe.png", data=jpeg(100, 100), headers={**AUTH, "If-Match": current}) as resp:
        assert resp.status == 200
    async with api.get("/shoe.png?preset=small") as resp:  # before the worker gets to it: a render, never the old one
        assert resp.headers["X-Cache"] == "miss"
        assert resp.headers["ETag"].strip('"') not in old

    assert await created(handler, data_dir, "shoe.png") is Outcome.RENDERED
    new = derived_keys(data_dir, "shoe.png")
    assert len(new) == VARIANTS_PER_SOURCE and not new & old  # the old version's variants are gone
    fresh = await aiohttp_client(create_app(settings()))
    async with fresh.get("/shoe.png?preset=small") as resp:
        assert resp.headers["X-Cache"] == "derived"
        assert resp.headers["ETag"].strip('"') in new


async def test_removed_deletes_the_derived_variants(handler, store, data_dir):
    store("gone.jpg", jpeg())
    await created(handler, data_dir, "gone.jpg")
    (data_dir / "gone.jpg").unlink()
    assert await handler.handle(StorageEvent("removed", "gone.jpg", None, "origin")) is Outcome.REMOVED
    assert derived_keys(data_dir, "gone.jpg") == set()


async def test_a_stale_removed_event_keeps_the_variants_of_a_key_stored_again(handler, store, data_dir):
    store("back.jpg", jpeg())
    await created(handler, data_dir, "back.jpg")
    assert await handler.handle(StorageEvent("removed", "back.jpg", None, "aws")) is Outcome.STALE
    assert len(derived_keys(data_dir, "back.jpg")) == VARIANTS_PER_SOURCE


async def test_variants_of_a_deeper_key_are_not_anothers(handler, store, data_dir):
    """`a` and `a/b.jpg` can both exist on S3: removing `a` must leave `a/b.jpg`'s variants alone."""
    derived = DerivedStore(LocalStorage(data_dir / "_" / "derived"))
    await derived.put("a", "v1", png(4, 4), "image/png")
    await derived.put("a/b.jpg", "v2", png(4, 4), "image/png")
    assert await derived.variants("a") == ["v1"]
    assert await handler.handle(StorageEvent("removed", "a", None, "aws")) is Outcome.REMOVED
    assert await derived.variants("a/b.jpg") == ["v2"]


# --------------------------------------------------------------------------- at-least-once, unordered


async def test_a_duplicate_event_renders_nothing(handler, store, data_dir):
    store("dup.jpg", jpeg())
    assert await created(handler, data_dir, "dup.jpg") is Outcome.RENDERED
    renders = (await handler.open()).resources.pool.renders
    assert await created(handler, data_dir, "dup.jpg") is Outcome.PRESENT
    assert (await handler.open()).resources.pool.renders == renders


async def test_an_event_for_another_version_is_skipped(handler, store, data_dir):
    store("old.jpg", jpeg())
    event = StorageEvent("created", "old.jpg", "0123456789abcdef0123456789abcdef", "aws")
    assert await handler.handle(event) is Outcome.STALE
    assert await handler.handle(StorageEvent("created", "never.jpg", None, "aws")) is Outcome.GONE
    assert (await handler.open()).resources.pool.renders == 0
    assert derived_keys(data_dir, "old.jpg") == set()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', id="svg"),
        pytest.param(png_header_only(64250, 64250), id="bomb"),
        pytest.param(jpeg()[:200], id="truncated"),
    ],
)
async def test_a_source_the_origin_refuses_is_acked_not_retried(handler, store, data_dir, body):
    store("bad.jpg", body)
    assert await created(handler, data_dir, "bad.jpg") is Outcome.REFUSED
    assert derived_keys(data_dir, "bad.jpg") == set()


# --------------------------------------------------------------------------- the origin's lookup


async def test_a_failing_derived_storage_degrades_to_a_render(make_client, store, presets, monkeypatch):
    store("x.jpg", jpeg())
    client = await make_client(presets=presets)
    service = client.app[SERVICE]

    async def broken(key: str) -> Any:
        raise StorageError("down")

    monkeypatch.setattr(service.derived.storage, "get", broken)
    async with client.get("/x.jpg?preset=card") as resp:
        assert resp.status == 200 and resp.headers["X-Cache"] == "miss"


async def test_without_derived_storage_there_is_no_lookup(make_client, store, data_dir):
    store("x.jpg", jpeg())
    client = await make_client(derived_storage_url="none")
    assert client.app[SERVICE].derived is None
    async with client.get("/x.jpg?w=10") as resp:
        assert resp.headers["X-Cache"] == "miss"
    assert not (data_dir / "_" / "derived").exists()


# --------------------------------------------------------------------------- popular specs


async def test_the_most_requested_specs_of_today_and_yesterday_are_prerendered(settings, store, data_dir, real_redis):
    today, yesterday = datetime.now(UTC), datetime.now(UTC) - timedelta(days=1)
    day = f"{real_redis.prefix}pop:{{:%Y%m%d}}".format
    await real_redis.client.zadd(day(today), {"w=10": 3, "fm=json": 50, "w=14": 1, "nonsense=1": 40})
    await real_redis.client.zadd(day(yesterday), {"w=12": 4, "w=10": 2, "auto=format&w=16": 6})
    config = settings(redis_url=real_redis.url, redis_prefix=real_redis.prefix, warm_popular=4)
    store("pop.jpg", jpeg())
    async with build_handler(config.configs()) as handler:
        assert await created(handler, data_dir, "pop.jpg") is Outcome.RENDERED
        service = (await handler.open()).resources.service
        # The top four of the two days summed: fm=json (50) and an unknown parameter (40) are
        # left out, auto=format&w=16 (6) in three formats, w=10 (3 + 2); not w=12 (4) nor w=14.
        expected = {(await service.resolve(VariantRequest("pop.jpg", TransformSpec(w=10), Accepts.LEGACY))).etag}
        for accepts in Accepts:
            expected.add(
                (await service.resolve(VariantRequest("pop.jpg", TransformSpec(w=16, auto=("format",)), accepts))).etag
            )
        left_out = (await service.resolve(VariantRequest("pop.jpg", TransformSpec(w=12), Accepts.LEGACY))).etag
    stored = derived_keys(data_dir, "pop.jpg")
    assert expected <= stored and left_out not in stored
    assert len(stored) == VARIANTS_PER_SOURCE + len(expected)
    assert [key async for key in real_redis.client.scan_iter(match=f"{real_redis.prefix}pop:top:*")] == []


# --------------------------------------------------------------------------- S3 end to end


async def test_end_to_end_on_s3_with_derived_in_a_second_bucket(s3_raw, s3_url, s3_endpoint, settings, aiohttp_client):
    from origin.app import create_app
    from tests.s3 import PREFIX, REGION

    raw, bucket = s3_raw
    derived_bucket = f"{bucket}-derived"
    raw.create_bucket(Bucket=derived_bucket)
    derived_url = f"s3://{derived_bucket}/variants?endpoint_url={s3_endpoint}&region={REGION}"
    config = settings(storage_url=s3_url, derived_storage_url=derived_url)
    raw.put_object(Bucket=bucket, Key=f"{PREFIX}/p/shoe.jpg", Body=jpeg(120, 90))
    etag = raw.head_object(Bucket=bucket, Key=f"{PREFIX}/p/shoe.jpg")["ETag"].strip('"')

    async with build_handler(config.configs()) as handler:
        assert await handler.handle(StorageEvent("created", "p/shoe.jpg", etag, "aws")) is Outcome.RENDERED
        assert await handler.handle(StorageEvent("created", "p/shoe.jpg", etag, "aws")) is Outcome.PRESENT
        assert (await handler.open()).resources.pool.renders == VARIANTS_PER_SOURCE
    listed = raw.list_objects_v2(Bucket=derived_bucket)["Contents"]
    assert len(listed) == VARIANTS_PER_SOURCE
    assert all(item["Key"].startswith("variants/p/shoe.jpg/") for item in listed)
    types = {raw.head_object(Bucket=derived_bucket, Key=item["Key"])["ContentType"] for item in listed}
    assert types == {"image/avif", "image/webp", "image/jpeg", "image/png"}

    client = await aiohttp_client(create_app(config))
    async with client.get("/p/shoe.jpg?preset=card", headers={"Accept": "image/avif"}) as resp:
        assert resp.headers["X-Cache"] == "derived" and resp.headers["Content-Type"] == "image/avif"
        assert magic(await resp.read()) == "avif"
    assert client.app[POOL].renders == 0

    raw.delete_object(Bucket=bucket, Key=f"{PREFIX}/p/shoe.jpg")
    async with build_handler(config.configs()) as handler:
        assert await handler.handle(StorageEvent("removed", "p/shoe.jpg", None, "aws")) is Outcome.REMOVED
    assert raw.list_objects_v2(Bucket=derived_bucket).get("KeyCount") == 0


# --------------------------------------------------------------------------- in process


async def test_uploads_on_the_embedded_default_are_prerendered_in_process(settings, data_dir, aiohttp_client):
    """No Redis, so no worker: the origin hands its own writes to the handler, sharing its service."""
    from origin.app import create_app
    from workers.handler import in_process

    client = await aiohttp_client(create_app(settings(), handler_factory=in_process))
    async with client.put("/new.jpg", data=jpeg(), headers={**AUTH, "If-None-Match": "*"}) as resp:
        assert resp.status == 201
    for _ in range(100):
        if len(derived_keys(data_dir, "new.jpg")) == VARIANTS_PER_SOURCE:
            break
        await asyncio.sleep(0.05)
    assert len(derived_keys(data_dir, "new.jpg")) == VARIANTS_PER_SOURCE
    async with client.get("/new.jpg?preset=small") as resp:
        assert resp.headers["X-Cache"] == "memory"  # the shared service kept its own render
    renders = client.app[POOL].renders
    async with client.delete("/", json={"images": ["new.jpg"]}, headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
    for _ in range(100):
        if not derived_keys(data_dir, "new.jpg"):
            break
        await asyncio.sleep(0.05)
    assert derived_keys(data_dir, "new.jpg") == set()
    assert client.app[POOL].renders == renders


def test_derived_storage_defaults_to_the_data_folder_only_for_local_originals():
    def derived_url(settings: Settings) -> str | None:
        return settings.configs().storage.derived_url

    assert derived_url(Settings(storage_url="file://./data")) == "file://./data/_/derived"
    assert derived_url(Settings(storage_url="file:///srv/img/")) == "file:///srv/img/_/derived"
    assert derived_url(Settings(storage_url="s3://bucket/originals")) is None
    assert derived_url(Settings(storage_url="s3://b", derived_storage_url="s3://b-derived")) == "s3://b-derived"
    assert derived_url(Settings(derived_storage_url="none")) is None


async def test_a_key_too_long_for_derived_names_is_left_to_the_origin(handler, store, data_dir):
    key = "/".join(["d" * 200, "e" * 200, "f" * 90 + ".jpg"])  # 496 bytes: valid, but not with "/{variant}"
    store(key, jpeg())
    assert await created(handler, data_dir, key) is Outcome.PRESENT
    assert (await handler.open()).resources.pool.renders == 0


@pytest.mark.parametrize(("required", "width"), [(False, 64.0), (True, 40.0)])
def test_a_warmed_preset_is_what_its_plain_url_gets(make_settings, tmp_path, required, width):
    """With require_signature off a plain `?preset=card` is unsigned, so the ladder snaps it (and
    that is the variant to warm); with it on, every URL is signed and served as the preset asks."""
    from origin.app import access_policy
    from workers.prerender import preset_spec

    path = tmp_path / "ladder.yaml"
    path.write_text(PRESETS + "allowed_widths: [32, 64]\n")
    configs = make_settings(presets=path, signing_keys=["k" * 32], require_signature=required).configs()
    access = access_policy(configs.access, configs.output)
    assert preset_spec(access, "card").w == width
