"""The playground's serving rules over HTTP: where it is on, its strict CSP, its assets, and the
presets listing it reads (token required). What the page does is tested in a real browser
(tests/origin/http/test_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from origin.http.playground import ASSETS, CSP
from origin.settings import is_loopback

TOKEN = "pg-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    ("host", "setting", "enabled"),
    [
        ("127.0.0.1", None, True),
        ("::1", None, True),
        ("localhost", None, True),
        ("0.0.0.0", None, False),
        ("::", None, False),
        ("10.1.2.3", None, False),
        ("images.internal", None, False),
        ("0.0.0.0", True, True),
        ("127.0.0.1", False, False),
    ],
)
def test_on_by_default_only_on_loopback(make_settings: Callable[..., Any], host: str, setting: Any, enabled: bool):
    assert make_settings(host=host, playground=setting).configs().playground is enabled


def test_loopback_names():
    assert is_loopback("127.0.0.2") and not is_loopback("0.0.0.0") and not is_loopback("example.com")


async def test_page_and_assets_are_served_with_a_strict_csp(make_client: Callable[..., Any]):
    client = await make_client()
    resp = await client.get("/_/playground")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    page = await resp.text()
    assert resp.headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    # Everything the page loads is its own: no script, style or image from another host.
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert ref.startswith("/_/playground/"), ref
    # No inline script or style, which the CSP would block anyway.
    assert "<style" not in page and not re.search(r"<script(?![^>]*\bsrc=)", page) and " style=" not in page
    for name, content_type in ASSETS.items():
        asset = await client.get(f"/_/playground/{name}")
        assert asset.status == 200, name
        assert asset.content_type == content_type
        assert asset.headers["Content-Security-Policy"] == CSP
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
    js = await (await client.get("/_/playground/app.js")).text()
    assert "sessionStorage" in js and "localStorage" not in js  # the token lives for the tab only
    assert "http://" not in js and "https://" not in js  # nothing fetched from another host


async def test_unknown_asset_and_traversal_are_404(make_client: Callable[..., Any]):
    client = await make_client()
    for path in ("/_/playground/nope.js", "/_/playground/..%2Fapp.py", "/_/playground/index.html/x"):
        resp = await client.get(path)
        assert resp.status in (400, 404), path
        assert (await resp.json())["error"]["code"] in ("not_found", "invalid_key")


async def test_off_answers_404(make_client: Callable[..., Any]):
    client = await make_client(playground=False)
    resp = await client.get("/_/playground")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_presets_listing_needs_the_token(make_client: Callable[..., Any], tmp_path: Any):
    presets = tmp_path / "presets.yaml"
    presets.write_text("presets:\n  card: {w: 600, h: 400, fit: crop, warm: true}\nallowed_widths: [320, 640]\n")
    client = await make_client(tokens=[TOKEN], presets=presets)
    assert (await client.get("/_/presets")).status == 401
    assert (await client.get("/_/presets", headers={"Authorization": "Bearer wrong"})).status == 403
    resp = await client.get("/_/presets", headers=AUTH)
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert await resp.json() == {
        "presets": [{"name": "card", "params": {"w": "600", "h": "400", "fit": "crop"}, "warm": True}],
        "presets_only": False,
        "allowed_widths": [320, 640],
    }
