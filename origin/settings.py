"""Every default and limit in one place, loaded from YAML and the environment, validated at start.

Precedence: environment (`IMAGE_ORIGIN_*`) over `config/settings.yaml` over the defaults
below. A bad value stops the process with a message naming the field, so a typo in a
deployment never becomes a silent default.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from .params import OutputLimits
from .render.config import RenderConfig
from .signing import MIN_HMAC_KEY_BYTES
from .storage.location import local_folder, parse_s3_url
from .storage_events import stream_key
from .urlparams.core import MAX_DPR
from .urlparams.text import HARD_MAX_CHARS, TextLimits

DEFAULT_CONFIG = Path("config/settings.yaml")
C = TypeVar("C")
MiB = 1024 * 1024


OPTIONAL_TEXT = (
    "derived_storage_url",
    "redis_url",
    "metrics_token",
    "cloudfront_distribution_id",
    "cloudflare_zone_id",
    "cloudflare_api_token",
    "cloudflare_purge_host",
    "sqs_queue_url",
    "sqs_endpoint_url",
)
"""Optional settings for which an empty value means unset (one validator says so for all)."""


class Settings(BaseSettings):
    """The service's configuration; field names are the YAML keys and, upper-cased, the env names."""

    model_config = SettingsConfigDict(env_prefix="IMAGE_ORIGIN_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    storage_url: str = "file://./data"
    storage_timeout: float = Field(10.0, gt=0, allow_inf_nan=False)
    # Pre-rendered variants (origin/derived.py). Unset: the data folder's `_/derived` when
    # originals are local, none on S3 (give a second bucket or an un-notified prefix); "none": off.
    derived_storage_url: str | None = None

    # Management API: bearer tokens (comma-separated in the environment). With none
    # configured, a token is generated at first start under the data folder's `_/`.
    tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    manage_cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_upload_bytes: int = Field(25 * MiB, gt=0)

    # Variant policy: named presets (and presets-only, the width ladder) from YAML, and
    # signed URLs: HMAC-SHA256 keys (>= 32 bytes) and/or imgix tokens (md5 `s`).
    presets: Path = Path("config/presets.yaml")
    signing_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    imgix_tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    require_signature: bool = False

    # In-process caches: rendered variants (byte-bounded LRU) and source metadata (TTL).
    cache_bytes: int = Field(128 * MiB, ge=0)
    cache_max_entry_bytes: int = Field(8 * MiB, ge=0)
    metadata_ttl: float = Field(5.0, ge=0, allow_inf_nan=False)

    # Redis (optional: unset, nothing needs it): hot variants, shared source metadata, render
    # locks across replicas, popularity counters. Each call has `redis_timeout`; after a failure
    # Redis is not asked for `redis_breaker_seconds`, so a dead Redis costs no latency.
    redis_url: str | None = None
    redis_prefix: str = "io:"
    redis_timeout: float = Field(0.1, gt=0, allow_inf_nan=False)
    redis_breaker_seconds: float = Field(5.0, gt=0, allow_inf_nan=False)
    # A variant is kept in Redis once one process has served it this many times within the window.
    redis_hot_sightings: int = Field(2, ge=1)
    redis_hot_window: float = Field(600.0, gt=0, allow_inf_nan=False)
    redis_max_entry_bytes: int = Field(2 * MiB, ge=0)
    redis_variant_ttl: float = Field(86400.0, gt=0, allow_inf_nan=False)
    redis_metadata_ttl: float = Field(30.0, ge=0, allow_inf_nan=False)
    redis_flush_interval: float = Field(10.0, gt=0, allow_inf_nan=False)
    # How long a replica's render lock lasts; the others wait for its result at most this long.
    redis_lease: float = Field(15.0, gt=0, allow_inf_nan=False)

    # Source limits, checked from the header before anything is decoded.
    max_source_pixels: int = Field(50_000_000, gt=0)
    max_source_side: int = Field(16384, gt=0)
    max_source_bytes: int = Field(50 * MiB, gt=0)
    animation: bool = False
    max_frames: int = Field(100, gt=0)
    max_animation_pixels: int = Field(100_000_000, gt=0)
    # Animated output: frames x output pixels x the encoder's cost (WebP 1, GIF 2), in pixels.
    max_animation_encode_pixels: int = Field(24_000_000, gt=0)

    # Output limits: larger requests are clamped, never refused.
    max_output_side: int = Field(4096, gt=0)
    max_dpr: float = Field(5.0, gt=0, le=MAX_DPR, allow_inf_nan=False)

    # Text drawn from the URL (`txt`): longer or more lines is a 400; a larger size is clamped.
    max_text_chars: int = Field(500, gt=0, le=HARD_MAX_CHARS)
    max_text_lines: int = Field(10, gt=0)
    max_text_size: int = Field(512, gt=0)

    # Rendering: a bounded pool with a bounded queue and a deadline per render.
    render_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, gt=0)
    render_queue: int = Field(32, ge=0)
    render_timeout: float = Field(10.0, gt=0, allow_inf_nan=False)
    render_memory: int = Field(176 * MiB, gt=0)
    retry_after: int = Field(2, gt=0)

    # Memory under attack (origin/source_memory.py): source bytes in memory at once (renders,
    # originals, ranges) and how long a request waits for its share before a 503; originals
    # streamed at once (each holds a file or an S3 connection) and how long a client may take
    # to accept one chunk of one.
    source_memory: int = Field(64 * MiB, gt=0)
    source_memory_wait: float = Field(2.0, ge=0, allow_inf_nan=False)
    original_streams: int = Field(32, gt=0)
    send_timeout: float = Field(30.0, gt=0, allow_inf_nan=False)
    # Connections (origin/server.py): a request's headers must be complete within `header_timeout`
    # of its first byte, its body within `body_timeout` of its headers; an idle connection is closed
    # after `keepalive_timeout`; past `max_connections` open ones, new ones get a 503 and are closed.
    header_timeout: float = Field(10.0, gt=0, allow_inf_nan=False)
    body_timeout: float = Field(120.0, gt=0, allow_inf_nan=False)
    keepalive_timeout: float = Field(30.0, gt=0, allow_inf_nan=False)
    max_connections: int = Field(4096, gt=0)

    # Encoders.
    default_quality: int = Field(75, ge=1, le=100)
    compress_quality: int = Field(45, ge=1, le=100)
    # AVIF effort 1: 1.7x the WebP encode time (2.8x its CPU), files 5% larger than effort 2
    # (measured by `python -m bench`; effort 2 costs 4.6x the WebP CPU time under load).
    avif_effort: int = Field(1, ge=0, le=9)
    webp_effort: int = Field(4, ge=0, le=6)

    # Response policy.
    cache_control: str = "public, max-age=31536000, stale-while-revalidate=86400, stale-if-error=604800"
    error_cache_control: str = "public, max-age=10"
    cors_origin: str = "*"
    log_level: str = "INFO"
    # `json`: every log line (the access log included) is one JSON object, for a log shipper.
    log_format: Literal["text", "json"] = "text"
    # One line per request (Combined Log Format + duration + request id) on `origin.access`.
    access_log: bool = False
    # The browser playground at /_/playground (origin/http/playground.py). Unset: on only while
    # `host` is a loopback address, so a public deployment does not show it unless asked to.
    playground: bool | None = None

    # Worker: on each upload, render the presets marked `warm: true` and this many of the most
    # requested specs (today's and yesterday's Redis popularity counts; none without Redis).
    warm_popular: int = Field(10, ge=0)
    # CDN purge after an upload or delete (workers/purge.py): CloudFront invalidation of
    # `/{key}` and `/{key}*`; Cloudflare purge by Cache-Tag, or by URL prefix `{host}/{key}`
    # when `cloudflare_purge_host` is set (e.g. img.example.com).
    cloudfront_distribution_id: str | None = None
    cloudflare_zone_id: str | None = None
    cloudflare_api_token: str | None = None
    cloudflare_api_base: str = "https://api.cloudflare.com/client/v4"
    cloudflare_purge_host: str | None = None
    # nginx in front (deploy/nginx/): the proxy_cache folder, writable by this process; a purge
    # deletes every cached response whose Cache-Tag is the key (nginx then answers MISS).
    nginx_cache_path: Path | None = None

    # Observability: Prometheus metrics at /_/metrics, never public by default. With
    # `metrics_port`, served only there (the main port answers 404); without it, on the main
    # port only when `metrics_token` (then required as a bearer token) or `metrics_public` is set.
    metrics_token: str | None = None
    metrics_public: bool = False
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(None, ge=0, le=65535)
    # /_/ready checks storage (and Redis) at once; one that takes longer than this is down.
    ready_timeout: float = Field(2.0, gt=0, allow_inf_nan=False)

    # Events in (workers/sources/): S3 notifications from an SQS queue (AWS; region and
    # credentials from the standard AWS environment, endpoint from AWS_ENDPOINT_URL_SQS or
    # `sqs_endpoint_url`), pushed to the worker's webhook (MinIO, Ceph RGW; queued in Redis),
    # and the origin's own writes (the Redis stream, or an in-process queue without Redis).
    sqs_queue_url: str | None = None
    sqs_endpoint_url: str | None = None
    sqs_wait_seconds: int = Field(20, ge=0, le=20)
    worker_host: str = "127.0.0.1"
    worker_port: int | None = Field(None, ge=0, le=65535)
    # Bearer tokens the webhook accepts (comma-separated in the environment); default `tokens`.
    worker_tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    worker_max_body_bytes: int = Field(1 * MiB, gt=0)
    worker_concurrency: int = Field(4, ge=1)
    worker_redis_timeout: float = Field(5.0, gt=0, allow_inf_nan=False)
    # A failed event is retried after `events_retry_base` seconds, doubling up to the cap
    # (SQS), or once no consumer has touched it for `events_claim_idle` (Redis stream); after
    # `events_max_deliveries` deliveries it is logged and dropped (left to an SQS DLQ if any).
    events_max_deliveries: int = Field(5, ge=1)
    events_retry_base: float = Field(10.0, ge=0, le=43200, allow_inf_nan=False)
    events_retry_cap: float = Field(900.0, ge=0, le=43200, allow_inf_nan=False)
    events_claim_idle: float = Field(120.0, gt=0, allow_inf_nan=False)
    events_stream_maxlen: int = Field(100_000, gt=0)
    events_queue_size: int = Field(1000, gt=0)

    @field_validator("storage_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        return _storage_url(value)

    @field_validator(*OPTIONAL_TEXT, mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty value (`IMAGE_ORIGIN_REDIS_URL=`) means unset, like an absent one: no Redis, the
        default derived storage, no token; never the URL or token ""."""
        return None if value == "" else value

    @field_validator("derived_storage_url")
    @classmethod
    def _derived_scheme(cls, value: str | None) -> str | None:
        return value if value is None or value == "none" else _storage_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("redis_url must be redis://HOST[:PORT][/DB], rediss://... or unix://PATH")
        return value

    @field_validator("signing_keys")
    @classmethod
    def _long_keys(cls, value: list[str]) -> list[str]:
        if any(len(key.encode()) < MIN_HMAC_KEY_BYTES for key in value):
            raise ValueError(f"each HMAC signing key must be at least {MIN_HMAC_KEY_BYTES} bytes")
        return value

    @model_validator(mode="after")
    def _cloudflare_has_token(self) -> Settings:
        if self.cloudflare_zone_id and not self.cloudflare_api_token:
            raise ValueError("cloudflare_zone_id is set but cloudflare_api_token is not")
        return self

    @model_validator(mode="after")
    def _signing_has_keys(self) -> Settings:
        if self.require_signature and not (self.signing_keys or self.imgix_tokens):
            raise ValueError("require_signature is on but no signing_keys or imgix_tokens are set")
        return self

    @field_validator("tokens", "manage_cors_origins", "signing_keys", "imgix_tokens", "worker_tokens", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    def configs(self) -> Configs:
        """Each concern's small frozen config, derived from these settings (build once, pass each
        consumer only its own). A config's field is the setting of the same name after the concern's
        prefix (`RedisConfig.lease` is `redis_lease`); the rest are given here."""
        text = TextLimits(self.max_text_chars, self.max_text_lines, self.max_text_size)
        return Configs(
            storage=StorageConfig(self.storage_url, self.storage_timeout, self._derived_url()),
            manage=ManageConfig(tuple(self.tokens), frozenset(self.manage_cors_origins), self.max_upload_bytes),
            access=AccessConfig(
                presets=self.presets,
                presets_named=self.presets != type(self).model_fields["presets"].default,
                signing_keys=tuple(self.signing_keys),
                imgix_tokens=tuple(self.imgix_tokens),
                require_signature=self.require_signature,
            ),
            cache=self._take(CacheConfig, "cache_", metadata_ttl=self.metadata_ttl),
            redis=None if self.redis_url is None else self._take(RedisConfig, "redis_"),
            output=OutputLimits(self.max_output_side, self.max_dpr, text),
            render=self._take(RenderConfig, text=text),
            pool=self._take(PoolConfig, "render_", retry_after=self.retry_after),
            sources=SourcesConfig(
                max_bytes=self.max_source_bytes,
                memory=self.source_memory,
                memory_wait=self.source_memory_wait,
                streams=self.original_streams,
                send_timeout=self.send_timeout,
                retry_after=self.retry_after,
            ),
            # Renders in flight finish before the server stops.
            connections=self._take(ConnectionsConfig, shutdown_timeout=self.render_timeout + 5),
            responses=self._take(ResponseConfig),
            playground=self.playground if self.playground is not None else is_loopback(self.host),
            metrics=self._take(MetricsConfig, "metrics_", ready_timeout=self.ready_timeout),
            events=self._take(EventsConfig, "events_"),
            worker=self._take(
                WorkerConfig,
                "worker_",
                storage_url=self.storage_url,
                redis_url=self.redis_url,
                stream=stream_key(self.redis_prefix),
                stream_maxlen=self.events_stream_maxlen,
                sqs_queue_url=self.sqs_queue_url,
                sqs_endpoint_url=self.sqs_endpoint_url,
                sqs_wait_seconds=self.sqs_wait_seconds,
                tokens=tuple(self.worker_tokens or self.tokens),
                max_deliveries=self.events_max_deliveries,
                retry_base=self.events_retry_base,
                retry_cap=self.events_retry_cap,
                claim_idle=self.events_claim_idle,
                warm_popular=self.warm_popular,
            ),
            purge=self._take(PurgeConfig),
        )

    def _take(self, config: type[C], prefix: str = "", **given: Any) -> C:
        """`config` with each field not `given` read from the setting `prefix + name`."""
        names = (field.name for field in dataclasses.fields(config))  # type: ignore[arg-type]
        values = {name: getattr(self, prefix + name) for name in names if name not in given}
        return config(**values, **given)

    def _derived_url(self) -> str | None:
        """The derived storage asked for: explicit, `none` (off), or the default: the data folder's
        `_/derived` when originals are in a local folder, off on S3 (see origin/derived.py)."""
        url = self.derived_storage_url
        if url == "none":
            return None
        if url is not None:
            return url
        parts = urlsplit(self.storage_url)
        if parts.scheme != "file":
            return None
        return f"file://{parts.netloc}{parts.path.rstrip('/')}/_/derived"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Command-line flags (init), then the environment, then the YAML file.
        return (init_settings, env_settings, _YamlValues(settings_cls))


# -- the small configs, one per concern ----------------------------------------------------------
# Built only by `Settings.configs()`: none has a default, so a value comes from the one field above.
# The pure code's own (OutputLimits, TextLimits, RenderConfig) live beside it, on the same rule.


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Originals and pre-rendered variants (origin/storage, origin/derived.py)."""

    url: str
    timeout: float
    derived_url: str | None
    """Resolved: the configured URL, the data folder's `_/derived` for local originals, or None (off)."""

    @property
    def local_folder(self) -> Path | None:
        """The data folder when originals are in a local folder (`file://`); None on S3."""
        return local_folder(self.url)


@dataclass(frozen=True, slots=True)
class ManageConfig:
    """The management API (origin/http/manage.py, auth.py)."""

    tokens: tuple[str, ...]
    cors_origins: frozenset[str]
    max_upload_bytes: int


@dataclass(frozen=True, slots=True)
class AccessConfig:
    """The variant policy: the presets file and signed URLs (origin/access.py, built in origin/app.py)."""

    presets: Path
    presets_named: bool
    """`presets` was configured (then a missing file is an error, not "no presets")."""
    signing_keys: tuple[str, ...]
    imgix_tokens: tuple[str, ...]
    require_signature: bool


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """The in-process caches: rendered variants (byte LRU) and source metadata (TTL)."""

    bytes: int
    max_entry_bytes: int
    metadata_ttl: float


@dataclass(frozen=True, slots=True)
class RedisConfig:
    """The shared cache across replicas (origin/cache/redis); there is none without `redis_url`."""

    url: str
    prefix: str
    timeout: float
    breaker_seconds: float
    hot_sightings: int
    hot_window: float
    max_entry_bytes: int
    variant_ttl: float
    metadata_ttl: float
    flush_interval: float
    lease: float


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """The render pool (origin/executor.py): threads, queue, deadline, memory budget."""

    workers: int
    queue: int
    timeout: float
    retry_after: int
    memory: int


@dataclass(frozen=True, slots=True)
class SourcesConfig:
    """Sources in memory and originals streamed (origin/source_memory.py, origin/service.py)."""

    max_bytes: int
    memory: int
    memory_wait: float
    streams: int
    send_timeout: float
    retry_after: int


@dataclass(frozen=True, slots=True)
class ConnectionsConfig:
    """The listening socket and its guard (origin/server.py)."""

    host: str
    port: int
    header_timeout: float
    body_timeout: float
    keepalive_timeout: float
    max_connections: int
    retry_after: int
    error_cache_control: str
    shutdown_timeout: float


@dataclass(frozen=True, slots=True)
class ResponseConfig:
    """Headers every response carries, and the access log (origin/app.py, origin/http)."""

    cache_control: str
    error_cache_control: str
    cors_origin: str
    access_log: bool


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Where /_/metrics is served, and /_/ready's deadline (origin/http/metrics.py, ready.py)."""

    token: str | None
    public: bool
    host: str
    port: int | None
    ready_timeout: float


@dataclass(frozen=True, slots=True)
class EventsConfig:
    """The origin's own storage events (origin/events.py): the Redis stream, or the in-process queue."""

    stream_maxlen: int
    queue_size: int


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """The worker's event sources and pre-rendering (workers/): what each source reads, where the
    originals it scopes events to live, and the Redis stream the webhook fills and the consumer reads."""

    storage_url: str
    redis_url: str | None
    stream: str
    """The Redis stream's name (`redis_prefix` + `events`)."""
    stream_maxlen: int
    sqs_queue_url: str | None
    sqs_endpoint_url: str | None
    sqs_wait_seconds: int
    host: str
    port: int | None
    tokens: tuple[str, ...]
    """The webhook's bearer tokens: `worker_tokens`, else the management `tokens`."""
    max_body_bytes: int
    concurrency: int
    redis_timeout: float
    max_deliveries: int
    retry_base: float
    retry_cap: float
    claim_idle: float
    warm_popular: int


@dataclass(frozen=True, slots=True)
class PurgeConfig:
    """CDN and nginx purges after an upload or delete (workers/purge.py)."""

    cloudfront_distribution_id: str | None
    cloudflare_zone_id: str | None
    cloudflare_api_token: str | None
    cloudflare_api_base: str
    cloudflare_purge_host: str | None
    nginx_cache_path: Path | None


@dataclass(frozen=True, slots=True)
class Configs:
    """Every concern's config, made once from the loaded settings by whoever builds things (the
    app, the CLI, the worker) and handed out one concern at a time."""

    storage: StorageConfig
    manage: ManageConfig
    access: AccessConfig
    cache: CacheConfig
    redis: RedisConfig | None
    output: OutputLimits
    render: RenderConfig
    pool: PoolConfig
    sources: SourcesConfig
    connections: ConnectionsConfig
    responses: ResponseConfig
    playground: bool
    """The browser playground is served: the setting when given, else only on a loopback `host`."""
    metrics: MetricsConfig
    events: EventsConfig
    worker: WorkerConfig
    purge: PurgeConfig

    def replace(self, **changes: Any) -> Configs:
        return dataclasses.replace(self, **changes)


def defaults() -> Configs:
    """The configs of the defaults alone, whatever the environment says (for tests and benchmarks)."""
    return Settings.model_construct().configs()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or a wildcard such as 0.0.0.0 / :: may be reachable from anywhere


def _storage_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme == "s3":
        parse_s3_url(value)  # raises ValueError naming the problem
        return value
    if parts.scheme != "file":
        raise ValueError("must be file://PATH or s3://BUCKET[/PREFIX][?endpoint_url=...]")
    return value


class _YamlValues(PydanticBaseSettingsSource):
    """The parsed YAML file, handed over by `load_settings` as a class attribute of a subclass."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(getattr(self.settings_cls, "yaml_values", {}))


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and field."""


ENV_PREFIX = "IMAGE_ORIGIN_"
OTHER_ENV = frozenset({"IMAGE_ORIGIN_CONFIG"})
"""Environment variables of ours that are not settings (`IMAGE_ORIGIN_TEST_*` belong to the tests)."""


def check_environment(environ: Mapping[str, str]) -> None:
    """ConfigError for an `IMAGE_ORIGIN_*` variable that names no setting, with the closest that does.

    pydantic-settings ignores such a variable, so a typo would silently become a default.
    """
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | OTHER_ENV
    for name in sorted(environ):
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) and upper not in known and not upper.startswith(ENV_PREFIX + "TEST_"):
            close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"unknown environment variable {name}{hint}")


def config_path(path: Path | None = None) -> tuple[Path, bool]:
    """The settings file to read and whether it was named (`--config`, IMAGE_ORIGIN_CONFIG)."""
    explicit = path or os.environ.get("IMAGE_ORIGIN_CONFIG")
    return (Path(explicit), True) if explicit else (DEFAULT_CONFIG, False)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from `path` (or IMAGE_ORIGIN_CONFIG, or config/settings.yaml if present).

    `overrides` win over both file and environment; the CLI uses them for --host/--port.
    A bad value is blamed on where it came from: the flag, the environment variable or the file.
    """
    from pydantic import ValidationError

    check_environment(os.environ)
    source, explicit = config_path(path)
    values: dict[str, Any] = {}
    if source.exists():
        try:
            loaded = yaml.safe_load(source.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: expected a mapping of setting names to values")
        values.update(loaded)
    elif explicit:
        raise ConfigError(f"{source}: no such file")
    loaded_from = type(
        "Settings", (Settings,), {"yaml_values": values, "__annotations__": {"yaml_values": ClassVar[dict[str, Any]]}}
    )
    try:
        settings = loaded_from(**overrides)
    except ValidationError as exc:
        env = {name.upper() for name in os.environ}
        problems = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"]) or "settings"
            name = str(err["loc"][0]) if err["loc"] else ""
            if name in overrides:
                origin = f"--{name}"
            elif ENV_PREFIX + name.upper() in env:
                origin = ENV_PREFIX + name.upper()
            else:
                origin = str(source) if name in values else "settings"
            problems.append(f"{field} (from {origin}): {err['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
    return settings
