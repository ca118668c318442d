"""The small per-concern configs `Settings.configs()` makes: each value from its one setting, no
default anywhere else, and variations made from a config rather than by copying Settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from origin.access import Access
from origin.params import OutputLimits
from origin.render import RenderConfig
from origin.settings import OPTIONAL_TEXT, Configs, Settings, defaults
from origin.signing import Signer
from origin.urlparams.text import TextLimits


def config_classes() -> list[type]:
    """Every config Configs holds (Redis's too, which the defaults leave out), and the pure code's own."""
    configs = Settings(redis_url="redis://localhost").configs()
    found = {type(getattr(configs, field.name)) for field in dataclasses.fields(Configs)}
    extra = {Configs, OutputLimits, TextLimits, RenderConfig, Access, Signer}
    return sorted((cls for cls in found | extra if dataclasses.is_dataclass(cls)), key=lambda cls: cls.__name__)


@pytest.mark.parametrize("cls", config_classes(), ids=lambda cls: cls.__name__)
def test_no_config_writes_a_default_of_its_own(cls):
    """settings.py is the only place a default is written: a config field without a value is an error."""
    for field in dataclasses.fields(cls):
        assert field.default is dataclasses.MISSING, f"{cls.__name__}.{field.name}"
        assert field.default_factory is dataclasses.MISSING, f"{cls.__name__}.{field.name}"


def test_each_config_reads_its_settings():
    configs = Settings(
        storage_url="s3://bucket/originals",
        derived_storage_url="s3://derived",
        redis_url="redis://cache:6379/1",
        redis_lease=7.0,
        redis_prefix="x:",
        cache_bytes=5,
        metadata_ttl=1.5,
        render_queue=3,
        render_timeout=4.0,
        max_output_side=900,
        max_text_chars=40,
        default_quality=60,
        original_streams=9,
        host="0.0.0.0",
        metrics_port=9100,
        ready_timeout=0.5,
        events_queue_size=12,
        tokens=["management-token-1234"],
        worker_concurrency=2,
        cloudflare_zone_id="zone",
        cloudflare_api_token="cf-token",
        require_signature=True,
        imgix_tokens=["tok"],
    ).configs()
    assert (configs.storage.url, configs.storage.derived_url) == ("s3://bucket/originals", "s3://derived")
    assert configs.redis is not None
    assert (configs.redis.url, configs.redis.lease, configs.redis.prefix) == ("redis://cache:6379/1", 7.0, "x:")
    assert (configs.cache.bytes, configs.cache.metadata_ttl) == (5, 1.5)
    assert (configs.pool.queue, configs.pool.timeout, configs.connections.shutdown_timeout) == (3, 4.0, 9.0)
    assert configs.output.max_side == configs.render.max_output_side == 900
    assert configs.output.text.max_chars == configs.render.text.max_chars == 40
    assert (configs.render.default_quality, configs.sources.streams) == (60, 9)
    assert configs.playground is False  # not on a loopback address, and not asked for
    assert (configs.metrics.port, configs.metrics.ready_timeout, configs.events.queue_size) == (9100, 0.5, 12)
    assert configs.worker.tokens == ("management-token-1234",)  # worker_tokens default to tokens
    assert (configs.worker.concurrency, configs.worker.stream) == (2, "x:events")
    assert (configs.purge.cloudflare_zone_id, configs.purge.cloudflare_api_token) == ("zone", "cf-token")
    assert configs.access.require_signature and configs.access.imgix_tokens == ("tok",)
    assert Settings().configs().redis is None


def test_defaults_are_the_settings_defaults_whatever_the_environment(monkeypatch):
    monkeypatch.setenv("IMAGE_ORIGIN_RENDER_QUEUE", "3")
    assert Settings().configs().pool.queue == 3
    assert defaults().pool.queue == Settings.model_fields["render_queue"].default


@pytest.mark.parametrize("name", OPTIONAL_TEXT)
def test_an_empty_optional_setting_is_unset(monkeypatch, name):
    monkeypatch.setenv("IMAGE_ORIGIN_" + name.upper(), "")
    assert getattr(Settings(), name) is None


def test_the_presets_file_is_named_only_when_configured(tmp_path: Path):
    assert defaults().access.presets_named is False
    assert Settings(presets=tmp_path / "p.yaml").configs().access.presets_named is True
