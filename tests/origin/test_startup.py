"""Start-up as an operator meets it (issue 8, items 12 and 15): every configuration mistake is
one line on stderr and exit 2, through the real command in a subprocess; --version, --help."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.live import free_port

TOKEN = "a-token-long-enough-0123"


# The tests of refusals that come after the port check: port 0 skips that check, so a server another
# program runs on the default port 8080 cannot turn their refusal into "address already in use".
ANY_PORT = ["serve", "--port", "0"]


def run(args: list[str], cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_ORIGIN_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "origin.cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit 2 and exactly one line on stderr (no traceback) containing every word."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_busy_port_is_one_line(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["serve", "--port", str(port)], tmp_path, IMAGE_ORIGIN_TOKENS=TOKEN)
    line = refused(result, f"cannot listen on 127.0.0.1:{port}", "address already in use")
    assert line.startswith("image-origin: ")


def test_misspelled_environment_variable_names_the_closest(tmp_path: Path):
    result = run(["serve"], tmp_path, IMAGE_ORIGIN_STORAGE_ULR="file:///srv")
    refused(result, "IMAGE_ORIGIN_STORAGE_ULR", "did you mean IMAGE_ORIGIN_STORAGE_URL?")
    refused(run(["worker"], tmp_path, IMAGE_ORIGIN_RENDER_WORKER="2"), "IMAGE_ORIGIN_RENDER_WORKERS")


def test_invalid_environment_value_is_blamed_on_the_variable(tmp_path: Path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.yaml").write_text("port: 8080\n")
    line = refused(run(["serve"], tmp_path, IMAGE_ORIGIN_PORT="eighty"), "port", "IMAGE_ORIGIN_PORT")
    assert "settings.yaml" not in line
    (tmp_path / "config" / "settings.yaml").write_text("port: eighty\n")
    line = refused(run(["serve"], tmp_path), "port", "config/settings.yaml")
    assert "IMAGE_ORIGIN_PORT" not in line
    refused(run(["serve"], tmp_path, IMAGE_ORIGIN_CONFIG=str(tmp_path / "nope.yaml")), "nope.yaml", "no such file")
    (tmp_path / "config" / "settings.yaml").write_text("port: [8080\nhost: x\n")  # YAML errors span lines
    refused(run(["serve"], tmp_path), "not valid YAML")


def test_a_configured_folder_that_does_not_exist_is_refused(tmp_path: Path):
    missing = tmp_path / "imgaes"
    line = refused(run(ANY_PORT, tmp_path, IMAGE_ORIGIN_STORAGE_URL=f"file://{missing}"), "does not exist")
    assert str(missing) in line
    assert not missing.exists()  # no new, empty store with a new token
    refused(run(["worker"], tmp_path, IMAGE_ORIGIN_STORAGE_URL=f"file://{missing}"), "does not exist")


@pytest.mark.parametrize("name", ["IMAGE_ORIGIN_TOKENS", "IMAGE_ORIGIN_METRICS_TOKEN"])
def test_a_short_token_is_refused(tmp_path: Path, name: str):
    refused(run(ANY_PORT, tmp_path, **{name: "x"}), "too easy to guess", "at least 16")


def test_s3_without_credentials_or_bucket_is_refused(tmp_path: Path, s3_endpoint: str):
    url = f"s3://no-such-bucket/p?endpoint_url={s3_endpoint}&region=us-east-1"
    bare = {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}
    no_credentials = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ACCESS") and "SECRET" not in k}
    result = subprocess.run(
        [sys.executable, "-m", "origin.cli", *ANY_PORT],
        cwd=tmp_path,
        env={**no_credentials, **bare, "IMAGE_ORIGIN_STORAGE_URL": url, "IMAGE_ORIGIN_TOKENS": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )
    refused(result, "s3://no-such-bucket", "NoCredentialsError")
    result = run(ANY_PORT, tmp_path, IMAGE_ORIGIN_STORAGE_URL=url, IMAGE_ORIGIN_TOKENS=TOKEN)
    refused(result, "no such bucket")


def test_the_embedded_default_starts_anywhere_and_says_what_it_uses(tmp_path: Path):
    """From a folder without config/: ./data is created, and the missing presets are said loudly."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "origin.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("IMAGE_ORIGIN_")},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (tmp_path / "data" / "_" / "token").exists():
            time.sleep(0.1)
        assert (tmp_path / "data").is_dir()
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert f"no config/settings.yaml in {tmp_path}" in stderr
    assert "WARNING origin: presets: no config/presets.yaml" in stderr and "running without presets" in stderr


def test_version_and_help_descriptions(tmp_path: Path):
    from origin.cli import _version

    result = run(["--version"], tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"image-origin {_version()}"
    assert _version()[0].isdigit()
    for command, words in (("serve", "Serve originals"), ("worker", "storage events"), ("warm", "Pre-render")):
        result = run([command, "--help"], tmp_path)
        assert result.returncode == 0
        assert words in " ".join(result.stdout.split()), result.stdout
