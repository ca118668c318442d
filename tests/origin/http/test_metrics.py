"""Observability over HTTP: /_/metrics (where and to whom it is served), /_/ready, X-Cache."""

from __future__ import annotations

import os
import shutil
import socket

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from origin.http.appkeys import METRICS_ADDRESS, SHARED
from origin.metrics import OUTCOMES, ROUTES
from tests.images import jpeg

TOKEN = "metrics-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample as {(name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(client, headers=AUTH) -> dict:
    async with client.get("/_/metrics", headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert resp.headers["Cache-Control"] == "no-store"
        return samples(await resp.text())


async def test_counters_after_a_miss_a_hit_a_404_and_a_400(make_client, store):
    client = await make_client(metrics_token=TOKEN)
    store("a.jpg", jpeg(64, 48))
    expected = [
        ("/a.jpg?w=20&fm=webp", 200, "miss"),
        ("/a.jpg?w=20&fm=webp", 200, "memory"),
        ("/nope.jpg?w=20", 404, None),
    ]
    expected += [("/a.jpg?w=oops", 400, None), ("/a.jpg", 200, "miss"), ("/a.jpg", 200, "memory")]
    for target, status, cache in expected:
        async with client.get(target) as resp:
            assert resp.status == status
            assert resp.headers.get("X-Cache") == cache  # originals carry it too

    found = await scrape(client)
    requests = "image_origin_requests_total"
    assert value(found, requests, route="image", status="200") == 2
    assert value(found, requests, route="image", status="404") == 1
    assert value(found, requests, route="image", status="400") == 1
    assert value(found, requests, route="original", status="200") == 2
    cache = {outcome: value(found, "image_origin_cache_total", outcome=outcome) for outcome in OUTCOMES}
    assert cache == {"memory": 2, "redis": 0, "derived": 0, "coalesced": 0, "miss": 2}
    assert value(found, "image_origin_render_seconds_count", format="webp") == 1
    assert value(found, "image_origin_render_seconds_bucket", format="webp", le="+Inf") == 1
    assert value(found, "image_origin_renders_total") == 1
    assert value(found, "image_origin_redis_errors_total") == 0
    names = {name for name, _ in found}
    assert {
        "image_origin_render_queue_depth",
        "image_origin_renders_in_flight",
        "image_origin_render_capacity",
    } <= names


async def test_route_labels_come_from_the_fixed_set(make_client, store):
    client = await make_client(metrics_token=TOKEN)
    store("a.jpg", jpeg())
    calls = [("GET", "/_/health"), ("GET", "/_/ready"), ("GET", "/"), ("POST", "/some/folder"), ("OPTIONS", "/a.jpg")]
    calls += [("PATCH", "/a.jpg"), ("GET", "/_/metrics"), ("GET", "/a.jpg?w=10"), ("HEAD", "/a.jpg")]
    for method, target in calls:
        async with client.request(method, target):
            pass
    found = await scrape(client)
    routes = {dict(labels)["route"] for name, labels in found if name == "image_origin_requests_total"}
    assert routes == set(ROUTES)  # PATCH (405) is "other"; the scrape without a token is "metrics"
    assert not any("/" in v for _, labels in found for _, v in labels)  # never a path


async def test_token_is_required_when_set(make_client):
    client = await make_client(metrics_token=TOKEN)
    for headers, status, code in (({}, 401, "unauthorized"), ({"Authorization": "Bearer wrong"}, 403, "forbidden")):
        async with client.get("/_/metrics", headers=headers) as resp:
            assert resp.status == status
            assert (await resp.json())["error"]["code"] == code
            assert resp.headers["Cache-Control"] == "no-store"
    async with client.get("/_/metrics") as resp:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_not_served_on_the_main_port_unless_asked(make_client):
    client = await make_client()
    async with client.get("/_/metrics") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
    public = await make_client(metrics_public=True)
    assert "image_origin_renders_total" in {name for name, _ in await scrape(public, headers={})}


async def test_separate_port_serves_them_and_the_main_port_does_not(make_client):
    client = await make_client(metrics_port=0, metrics_token=TOKEN)
    async with client.get("/_/metrics", headers=AUTH) as resp:
        assert resp.status == 404
    host, port = client.app[METRICS_ADDRESS][:2]
    url = f"http://{host}:{port}/_/metrics"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.status == 401
        async with session.get(url, headers=AUTH) as resp:
            assert resp.status == 200
            assert "image_origin_renders_total" in {name for name, _ in samples(await resp.text())}
    await client.close()  # the site stops with the app
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1).close()


async def test_ready_on_local_storage(client):
    async with client.get("/_/ready") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ready", "checks": {"storage": "ok"}}
        assert resp.headers["Cache-Control"] == "no-store"
    async with client.get("/_/health") as resp:
        assert resp.status == 200


async def test_not_ready_when_the_storage_folder_is_gone(client, data_dir):
    shutil.rmtree(data_dir)
    async with client.get("/_/ready") as resp:
        assert resp.status == 503
        assert await resp.json() == {"status": "unavailable", "down": ["storage"], "checks": {"storage": "error"}}
        assert resp.headers["Cache-Control"] == "no-store"
    async with client.get("/_/health") as resp:
        assert resp.status == 200  # alive, only not ready: restarting would not help


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its mode")
async def test_not_ready_when_the_storage_folder_is_unreadable(client, data_dir):
    data_dir.chmod(0)
    try:
        async with client.get("/_/ready") as resp:
            assert resp.status == 503
    finally:
        data_dir.chmod(0o755)


async def test_not_ready_when_s3_does_not_answer(make_client, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    try:
        port = closed.getsockname()[1]
        client = await make_client(
            storage_url=f"s3://bucket?endpoint_url=http://127.0.0.1:{port}&region=us-east-1",
            storage_timeout=0.5,
            ready_timeout=1,
        )
        async with client.get("/_/ready") as resp:
            assert resp.status == 503
            body = await resp.json()
            assert body["down"] == ["storage"] and body["checks"]["storage"] in {"error", "timeout"}
    finally:
        closed.close()


def closed_port() -> int:
    """A local port nothing listens on: Redis there refuses every connection."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_ready_pings_redis_when_configured(make_client, fake_server):
    client = await make_client(redis_url="redis://fake")
    async with client.get("/_/ready") as resp:
        assert resp.status == 200
        assert (await resp.json())["checks"] == {"storage": "ok", "redis": "ok"}


async def test_ready_is_503_while_redis_is_down(make_client):
    client = await make_client(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    for _ in range(2):  # PING refused, then the breaker it opened: both are down
        async with client.get("/_/ready") as resp:
            assert resp.status == 503
            assert (await resp.json())["checks"] == {"storage": "ok", "redis": "error"}


async def test_redis_errors_are_read_at_scrape_time(make_client):
    client = await make_client(metrics_token=TOKEN, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    async with client.get("/_/ready") as resp:
        assert resp.status == 503  # the refused PING counts one error
    assert value(await scrape(client), "image_origin_redis_errors_total") == client.app[SHARED].client.errors >= 1
