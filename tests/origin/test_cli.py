"""The commands users type: settings precedence, refusal on bad config, SIGTERM drains."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from origin.settings import ConfigError, load_settings
from tests.images import encode, quadrants
from tests.live import free_port, wait_healthy


def test_yaml_then_env_then_overrides(tmp_path, monkeypatch):
    config = tmp_path / "settings.yaml"
    config.write_text("port: 9001\nmax_output_side: 2000\n")
    assert load_settings(config).port == 9001
    monkeypatch.setenv("IMAGE_ORIGIN_PORT", "9002")
    settings = load_settings(config)
    assert settings.port == 9002 and settings.max_output_side == 2000
    assert load_settings(config, port=9003).port == 9003


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("render_timeout: 0\n", "render_timeout"),
        ("render_queue: -1\n", "render_queue"),
        ("max_source_pixels: 0\n", "max_source_pixels"),
        ("storage_url: ftp://x\n", "storage_url"),
        ("no_such_setting: 1\n", "no_such_setting"),
        ("- a list\n", "mapping"),
    ],
)
def test_bad_settings_name_the_field(tmp_path, yaml_text, field):
    config = tmp_path / "settings.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError, match=field):
        load_settings(config)


def test_missing_explicit_config_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "absent.yaml")


def test_cli_exits_non_zero_on_bad_config(tmp_path):
    config = tmp_path / "settings.yaml"
    config.write_text("port: not-a-port\n")
    result = subprocess.run(
        [sys.executable, "-m", "origin", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "port" in result.stderr


async def test_sigterm_drains_in_flight_renders(tmp_path: Path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "big.png").write_bytes(encode(quadrants(3000, 3000), ".png", compression=1))
    port = free_port()
    env = {**os.environ, "IMAGE_ORIGIN_STORAGE_URL": f"file://{data_dir}", "IMAGE_ORIGIN_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "origin"], env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_healthy(base, proc)
        async with aiohttp.ClientSession() as session:
            slow = asyncio.ensure_future(session.get(f"{base}/big.png?w=4000&h=4000&fit=scale&sharp=100&sat=50&fm=png"))
            await asyncio.sleep(0.3)
            assert not slow.done(), "the render must still be in flight when SIGTERM arrives"
            proc.send_signal(signal.SIGTERM)
            resp = await slow
            assert resp.status == 200
            body = await resp.read()
            assert body.startswith(b"\x89PNG")
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
