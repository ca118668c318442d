"""The OpenAPI document: generated from the code, committed, served, and covering every route.

The schemathesis run against a live server is in tests/origin/http/test_schemathesis.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from origin import openapi
from origin.app import create_app
from origin.urlparams import TABLE
from origin.urlparams.core import FITS
from tests import ROOT

COMMITTED = ROOT / "docs" / "openapi.json"


def test_committed_document_is_the_generated_one():
    generated = openapi.render()
    committed = COMMITTED.read_text() if COMMITTED.exists() else ""
    assert committed == generated, (
        f"docs/openapi.json is not what the code generates; regenerate it with:\n    {openapi.REGENERATE}"
    )


def test_every_url_parameter_is_described_with_its_range():
    described = {p["name"]: p["schema"] for p in openapi.url_parameters()}
    assert set(TABLE) <= set(described)
    assert described["width"] == described["w"]
    assert described["q"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert described["bri"] == {"type": "integer", "minimum": -100, "maximum": 100}
    assert described["fp-x"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert set(described["fit"]["enum"]) == set(FITS)
    assert "avif" in described["fm"]["enum"]
    assert {"preset", "s", "expires"} <= set(described)


def test_every_route_of_the_app_is_documented(make_settings: Callable[..., Any]):
    app = create_app(make_settings(playground=True))
    doc = openapi.document()
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    routes = set()
    for resource in app.router.resources():
        path = resource.canonical
        for route in resource:
            if route.method in ("HEAD", "*"):
                continue
            routes.add((path.replace("{name}", "{key}") if path.startswith("/_/playground/") else path, route.method))
    # The playground's three asset files are part of the page, not of the API.
    routes.discard(("/_/playground/{key}", "GET"))
    assert routes <= documented, sorted(routes - documented)


def test_references_resolve():
    doc = openapi.document()
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/')[1:]}:
        node: Any = doc
        for step in ref.split("/"):
            node = node[step]
        assert node, ref


async def test_served_document_is_the_generated_one(client: Any):
    resp = await client.get("/_/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.text() == openapi.render()
