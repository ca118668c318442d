"""The HTTP floor: a bare aiohttp app that returns pre-rendered bytes from memory.

Usage: python bench/bare_server.py BODIES_DIR PORT

BODIES_DIR holds one file per key plus `types.json` ({key: content type}); `GET /<key>`
(any query string) answers those bytes. No middleware, no extra headers, no access log,
the same `web.run_app` as the origin, so the difference to the origin's cache hit is
the origin's own per-request work.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from aiohttp import web


def main() -> None:
    root, port = Path(sys.argv[1]), int(sys.argv[2])
    types = json.loads((root / "types.json").read_text())
    bodies = {key: ((root / key).read_bytes(), ctype) for key, ctype in types.items()}

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def handle(request: web.Request) -> web.Response:
        item = bodies.get(request.match_info["key"])
        if item is None:
            raise web.HTTPNotFound()
        return web.Response(body=item[0], content_type=item[1])

    app = web.Application()
    app.router.add_get("/_/health", health)
    app.router.add_get("/{key:.+}", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
