"""Every typed application key, in one place: what the app holds, and who may read it.

Set in `create_app`, its cleanup context and the `setup_*` functions, read by the handlers:
each handler reads the resources it uses (storage, the render pool...) as their own keys,
never through the service. The value types are imported for the type checker only, so any
module can import its keys from here without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..access import Access
    from ..cache.redis import SharedCache
    from ..events import Emitter
    from ..executor import RenderPool
    from ..metrics import Metrics
    from ..render import RenderConfig
    from ..service import ImageService
    from ..storage import Storage
    from ..tokens import Tokens
    from .cors import ManageCors
    from .images import ResponsePolicy

SERVICE: web.AppKey[ImageService] = web.AppKey("service")
"""The GET path: source versions, variants and originals."""
STORAGE: web.AppKey[Storage] = web.AppKey("storage")
POOL: web.AppKey[RenderPool] = web.AppKey("pool")
RENDER_CONFIG: web.AppKey[RenderConfig] = web.AppKey("render_config")
SHARED: web.AppKey[SharedCache | None] = web.AppKey("shared")
"""The shared cache (Redis); None on one machine."""
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
