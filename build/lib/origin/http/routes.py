"""The route table, declared once."""

from __future__ import annotations

from aiohttp import web

from .cors import preflight
from .health import health
from .images import get_image
from .manage import delete_images, list_images, managed, put_image, upload
from .ready import ready

# [\s\S]: a key with an encoded newline must reach the key validator (400), not miss the route.
KEY = r"/{key:[\s\S]+}"


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/_/health", health)
    app.router.add_get("/_/ready", ready)
    app.router.add_get(KEY, get_image)
    app.router.add_put(KEY, managed(put_image))
    # POST and DELETE on "/" work at the root of the key space; GET / lists.
    for path in (KEY, "/"):
        app.router.add_post(path, managed(upload))
        app.router.add_delete(path, managed(delete_images))
        app.router.add_route("OPTIONS", path, preflight)
    app.router.add_get("/", managed(list_images))
