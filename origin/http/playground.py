"""The browser playground at /_/playground, and the presets listing it reads.

Three static files from the package (origin/playground/: no build step, nothing from
another host), served with a Content-Security-Policy that allows only this origin's own
script and style, images from here and from `blob:` (results are fetched, so their headers
can be shown, then displayed from a blob), and fetches to this origin. The page calls the
real management API with the token the user pastes; nothing here bypasses it.

`GET /_/presets` (management token required: it shows configuration) lists the presets of
presets.yaml and the width ladder, so the page can render each preset side by side.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from .appkeys import ACCESS
from .manage import managed

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSETS = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def setup_playground(app: web.Application, enabled: bool) -> None:
    """Routes for the page (when `enabled`: see `Configs.playground`) and the presets listing
    (always: it needs a token).

    Call before `setup_routes`: `/{key}` would otherwise take these paths.
    """
    app.router.add_get("/_/presets", managed(list_presets))
    if not enabled:
        app.router.add_get("/_/playground", _not_found)  # a 404 says "off"; the key route would say 400
        return
    files = {name: (resources.files("origin.playground") / name).read_bytes() for name in ASSETS}

    async def page(request: web.Request) -> web.Response:
        name = request.match_info.get("name", "index.html")
        if name not in files:
            raise web.HTTPNotFound()
        return web.Response(body=files[name], content_type=ASSETS[name], charset="utf-8", headers=_HEADERS)

    app.router.add_get("/_/playground", page)
    app.router.add_get("/_/playground/{name}", page)


async def _not_found(request: web.Request) -> web.Response:
    raise web.HTTPNotFound()


async def list_presets(request: web.Request) -> web.Response:
    """Every preset's parameters as `preset=` expands them, plus the variant policy."""
    book = request.app[ACCESS].book
    return web.json_response(
        {
            "presets": [
                {"name": preset.name, "params": dict(preset.params), "warm": preset.warm}
                for preset in book.presets.values()
            ],
            "presets_only": book.presets_only,
            "allowed_widths": list(book.allowed_widths),
        }
    )
