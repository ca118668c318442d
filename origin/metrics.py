"""Prometheus metrics: counters bumped on the request path, gauges read when scraped.

Each application owns its registry (not prometheus_client's global one), so several apps
in one process (the tests) never share or collide on series. Nothing runs in the
background: the render queue, renders in flight and Redis errors are read from the live
objects at scrape time, so they cannot drift from what the pool and the cache report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .logs import libvips_warnings

if TYPE_CHECKING:
    from .cache.redis import SharedCache
    from .executor import RenderPool
    from .service import Image, Original

ROUTES = ("image", "original", "manage", "health", "metrics", "other")
"""Every value of the `route` label: a fixed set, so no request can mint a new series."""
OUTCOMES = ("memory", "redis", "derived", "coalesced", "miss")
"""Where an image response's body came from (its X-Cache header)."""


class Metrics:
    """The application's metrics: counters from the start, the pool's figures once `watching` it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "image_origin_requests", "HTTP responses by route and status.", ("route", "status"), registry=self.registry
        )
        self._cache = Counter(
            "image_origin_cache", "Image responses by X-Cache outcome.", ("outcome",), registry=self.registry
        )
        # Labelled children made once: `.labels()` costs ~5 us, a tenth of a memory hit.
        # Every outcome exists at 0 from the start, so rates work from the first scrape.
        self._outcomes = {outcome: self._cache.labels(outcome) for outcome in OUTCOMES}
        self._statuses: dict[tuple[str, int], Any] = {}
        self._render_seconds = Histogram(
            "image_origin_render_seconds", "Render time by output format.", ("format",), registry=self.registry
        )

    @contextlib.contextmanager
    def watching(self, pool: RenderPool, shared: SharedCache | None) -> Iterator[None]:
        """Serve the pool's and Redis' figures while entered (the app's lifetime, once they are open)."""
        collector = _PoolCollector(pool, shared)
        self.registry.register(collector)
        try:
            yield
        finally:
            self.registry.unregister(collector)

    def request(self, route: str, status: int) -> None:
        child = self._statuses.get((route, status))
        if child is None:
            child = self._statuses[(route, status)] = self._requests.labels(route, str(status))
        child.inc()

    def observe_render(self, fmt: str, seconds: float) -> None:
        """One render to `fmt` (an output format name: jpg, webp, json...) that took `seconds`."""
        self._render_seconds.labels(fmt).observe(seconds)

    def served(self, image: Image | Original) -> None:
        """Count an image response by cache outcome (renders are timed by the service)."""
        self._outcomes[image.cache].inc()

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The registry and its content type: Prometheus' text format, or OpenMetrics if `accept` asks."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class _PoolCollector(Collector):
    """Render pool and Redis figures, read from the live objects at each scrape."""

    def __init__(self, pool: RenderPool, shared: SharedCache | None) -> None:
        self._pool = pool
        self._shared = shared

    def collect(self) -> Iterator[Metric]:
        pool = self._pool
        running = min(pool.admitted, pool.workers)
        redis_errors = self._shared.client.errors if self._shared is not None else 0
        yield GaugeMetricFamily("image_origin_render_queue_depth", "Renders waiting for a worker.", pool.queued)
        yield GaugeMetricFamily("image_origin_renders_in_flight", "Renders on a worker.", running)
        yield GaugeMetricFamily("image_origin_render_capacity", "Renders admitted at most.", pool.capacity)
        yield CounterMetricFamily("image_origin_renders", "Renders admitted since start.", pool.renders)
        yield CounterMetricFamily("image_origin_redis_errors", "Redis calls that failed or timed out.", redis_errors)
        yield CounterMetricFamily(
            "image_origin_libvips_warnings", "libvips warnings (logged at DEBUG on origin.vips).", libvips_warnings()
        )
