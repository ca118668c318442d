"""Every typed application key, in one place: what the app holds, and who may read it.

Set in `create_app` and the `setup_*` functions, read by the handlers (and by the worker's
in-process handler). The value types are imported for the type checker only, so any
module can import its keys from here without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..access import Access
    from ..events import Emitter
    from ..metrics import Metrics
    from ..service import ImageService
    from ..settings import Configs
    from ..tokens import Tokens
    from .cors import ManageCors
    from .images import ResponsePolicy

CONFIGS: web.AppKey[Configs] = web.AppKey("configs")
"""Every concern's config (the in-process event handler builds from it)."""
SERVICE: web.AppKey[ImageService] = web.AppKey("service")
ACCESS: web.AppKey[Access] = web.AppKey("access")
POLICY: web.AppKey[ResponsePolicy] = web.AppKey("policy")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
EMITTER: web.AppKey[Emitter] = web.AppKey("emitter")
TOKENS: web.AppKey[Tokens] = web.AppKey("tokens")
MANAGE_CORS: web.AppKey[ManageCors] = web.AppKey("manage_cors")
SEND_TIMEOUT = web.AppKey("send_timeout", float)
"""Seconds a client may take to accept one chunk of an original before the response is cut."""
READY_TIMEOUT = web.AppKey("ready_timeout", float)
UPLOAD_LIMIT = web.AppKey("upload_limit", int)
WRITES = web.AppKey("writes", set)
METRICS_ADDRESS = web.AppKey("metrics_address", tuple)
"""Where the separate metrics site listens, once started (port 0 picks a free port)."""
