"""CDN purge hooks: what reaches Cloudflare (a fake API on a test server) and CloudFront (moto),
and that a CDN that fails never fails the event."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web

import workers.purge
from origin.settings import Settings
from origin.storage import LocalStorage
from origin.storage_events import StorageEvent
from tests.images import jpeg
from tests.s3 import REGION
from workers.handler import build_handler
from workers.prerender import Outcome

ZONE = "zone123"
TOKEN = "cf-token"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers.purge, "BACKOFF", 0.01)


@pytest.fixture
def make_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Callable[..., Settings]:
    """No warm presets unless a test gives some: these tests are about what follows the pre-render."""
    empty = tmp_path / "no-presets.yaml"
    empty.write_text("presets: {}\n")

    def build(**overrides: Any) -> Settings:
        return make_settings(**{"presets": empty, **overrides})

    return build


@pytest.fixture
async def cloudflare(aiohttp_server: Any) -> tuple[str, list[dict[str, Any]], list[int]]:
    """A fake Cloudflare API: the base URL, the requests it got, and statuses to answer with first."""
    seen: list[dict[str, Any]] = []
    failures: list[int] = []

    async def purge_cache(request: web.Request) -> web.Response:
        seen.append(
            {
                "zone": request.match_info["zone"],
                "auth": request.headers.get("Authorization"),
                "body": await request.json(),
            }
        )
        if failures:
            return web.json_response({"success": False, "errors": [{"code": 10000}]}, status=failures.pop(0))
        return web.json_response({"success": True, "errors": [], "messages": [], "result": {"id": "x"}})

    app = web.Application()
    app.router.add_post("/client/v4/zones/{zone}/purge_cache", purge_cache)
    server = await aiohttp_server(app)
    return str(server.make_url("/client/v4")), seen, failures


async def handle(config: Settings, data_dir: Path, key: str, kind: str = "created") -> Outcome:
    etag = (await LocalStorage(data_dir).head(key)).etag if kind == "created" else None
    async with build_handler(config.configs()) as handler:  # closing waits for the purges in flight
        return await handler.handle(StorageEvent(kind, key, etag, "origin"))  # type: ignore[arg-type]


async def test_cloudflare_purges_by_cache_tag(make_settings: Callable[..., Settings], store, data_dir, cloudflare):
    base, seen, _ = cloudflare
    store("a b/shoe.jpg", jpeg())
    config = make_settings(cloudflare_api_base=base, cloudflare_zone_id=ZONE, cloudflare_api_token=TOKEN)
    assert await handle(config, data_dir, "a b/shoe.jpg") is Outcome.PRESENT  # no warm presets here
    assert seen == [{"zone": ZONE, "auth": f"Bearer {TOKEN}", "body": {"tags": ["a%20b/shoe.jpg"]}}]


async def test_cloudflare_purges_by_prefix_when_a_host_is_set(make_settings, store, data_dir, cloudflare):
    base, seen, _ = cloudflare
    store("shoe.jpg", jpeg())
    config = make_settings(
        cloudflare_api_base=base,
        cloudflare_zone_id=ZONE,
        cloudflare_api_token=TOKEN,
        cloudflare_purge_host="img.example.com",
    )
    (data_dir / "shoe.jpg").unlink()
    assert await handle(config, data_dir, "shoe.jpg", "removed") is Outcome.REMOVED
    assert [entry["body"] for entry in seen] == [{"prefixes": ["img.example.com/shoe.jpg"]}]


async def test_a_failing_purge_is_retried(make_settings, store, data_dir, cloudflare):
    base, seen, failures = cloudflare
    failures += [500, 429]
    store("shoe.jpg", jpeg())
    config = make_settings(cloudflare_api_base=base, cloudflare_zone_id=ZONE, cloudflare_api_token=TOKEN)
    assert await handle(config, data_dir, "shoe.jpg") is Outcome.PRESENT
    assert len(seen) == 3 and not failures


async def test_a_purge_that_keeps_failing_never_fails_the_event(
    make_settings, store, data_dir, tmp_path, unused_tcp_port
):
    store("shoe.jpg", jpeg())
    presets = tmp_path / "presets.yaml"
    presets.write_text("presets:\n  card: {w: 20, warm: true}\n")
    config = make_settings(
        presets=presets,
        cloudflare_api_base=f"http://127.0.0.1:{unused_tcp_port}/client/v4",  # nothing listens there
        cloudflare_zone_id=ZONE,
        cloudflare_api_token=TOKEN,
    )
    etag = (await LocalStorage(data_dir).head("shoe.jpg")).etag
    handler = build_handler(config.configs())
    outcome = await handler.handle(StorageEvent("created", "shoe.jpg", etag, "origin"))
    purges = (await handler.open()).purges
    await handler.close()
    assert outcome is Outcome.RENDERED  # the pre-render did not wait for, or depend on, the CDN
    assert purges.failures == 1


async def test_stale_events_purge_nothing(make_settings, store, data_dir, cloudflare):
    base, seen, _ = cloudflare
    store("shoe.jpg", jpeg())
    config = make_settings(cloudflare_api_base=base, cloudflare_zone_id=ZONE, cloudflare_api_token=TOKEN)
    async with build_handler(config.configs()) as handler:
        assert await handler.handle(StorageEvent("created", "shoe.jpg", "not-this-version", "aws")) is Outcome.STALE
        assert await handler.handle(StorageEvent("removed", "shoe.jpg", None, "aws")) is Outcome.STALE
    assert seen == []


async def test_cloudfront_invalidates_the_key_and_its_variants(
    make_settings, store, data_dir, s3_endpoint, monkeypatch
):
    cloudfront = boto3.client("cloudfront", endpoint_url=s3_endpoint, region_name=REGION)
    origin = {
        "Id": "o",
        "DomainName": "origin.example.com",
        "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"},
    }
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "test",
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {
                "TargetOriginId": "o",
                "ViewerProtocolPolicy": "allow-all",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": True, "Cookies": {"Forward": "none"}},
            },
            "Comment": "",
            "Enabled": True,
        }
    )["Distribution"]["Id"]
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFRONT", s3_endpoint)
    store("a b/shoe.jpg", jpeg())
    config = make_settings(cloudfront_distribution_id=distribution)
    assert await handle(config, data_dir, "a b/shoe.jpg") is Outcome.PRESENT
    listed = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]["Items"]
    assert len(listed) == 1
    batch = cloudfront.get_invalidation(DistributionId=distribution, Id=listed[0]["Id"])["Invalidation"][
        "InvalidationBatch"
    ]
    assert batch["Paths"]["Items"] == ["/a%20b/shoe.jpg", "/a%20b/shoe.jpg*"]
