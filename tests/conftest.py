"""Shared fixtures: settings on a temporary data folder, a real app on a test server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from origin.app import create_app
from origin.settings import Settings


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def store(data_dir: Path) -> Callable[[str, bytes], Path]:
    """Put an object straight into the local storage folder (as an out-of-band upload)."""

    def put(key: str, data: bytes) -> Path:
        path = data_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return put


@pytest.fixture
def make_settings(data_dir: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "storage_url": f"file://{data_dir}",
            "render_workers": 2,
            "metadata_ttl": 0,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
async def make_client(aiohttp_client: Any, make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    async def build(**overrides: Any) -> Any:
        return await aiohttp_client(create_app(make_settings(**overrides)))

    return build


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> Any:
    return await make_client()


pytest_plugins = ["tests.s3", "tests.redis_helpers"]
