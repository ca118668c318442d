"""The container recipe, validated without a Docker engine (none runs on this machine).

- compose.yaml: `docker-compose config` (Debian's docker-compose, which needs no engine for it)
  accepts it, and its wiring holds: MinIO's webhook target is the worker's /_/events with the
  worker's token, and the bucket's events go to that target.
- Dockerfile: its steps, run as a script: the wheel it installs builds from this tree and carries
  the playground's files; installed into a fresh venv (dependencies taken from the test venv rather
  than downloaded), the build stage's own check imports pyvips and the app; `image-origin serve`
  with the final stage's ENV and WORKDIR (config/ copied) starts, and the HEALTHCHECK command, as
  written, passes. Not run here: the image build itself, the base image, `useradd`, the non-root
  user, and compose's containers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.live import ROOT, free_port

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(
        r"\\\n", " ", "\n".join(line for line in DOCKERFILE.read_text().splitlines() if not line.startswith("#"))
    )
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in text.splitlines() if line.strip()
    ]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last = max(i for i, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last:]


def test_dockerfile_runs_as_a_non_root_user_with_a_healthcheck():
    stage = dict(final_stage())
    assert stage["USER"] not in ("root", "0")
    assert "/_/health" in stage["HEALTHCHECK"]
    assert json.loads(stage["CMD"]) == ["image-origin", "serve"]
    assert "pyvips-binary" in (ROOT / "pyproject.toml").read_text()  # libvips comes from the wheel


def test_dockerfile_steps_run_as_a_script(tmp_path: Path):
    # The build stage's COPY steps, into a folder of their own (a build in this tree would leave build/ here).
    src = tmp_path / "src"
    build_stage = instructions()[: max(i for i, (name, _) in enumerate(instructions()) if name == "FROM")]
    for name, args in build_stage:
        if name != "COPY":
            continue
        *sources, target = args.split()
        folder = src / target.removeprefix("./").rstrip("/")
        for source in sources:
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, folder, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, folder / source)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(src),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("image_origin-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for asset in ("index.html", "app.js", "style.css"):
        assert f"origin/playground/{asset}" in names, names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True)
    # Dependencies from the test venv (a plain path line: its own .pth files, such as the editable
    # install of this tree, are not processed, so `origin` is the wheel's).
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    Path(site.stdout.strip(), "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    build_check = next(args for name, args in instructions() if name == "RUN" and "import pyvips" in args)
    check = re.search(r"/opt/venv/bin/python -c \"([^\"]+)\"", build_check)
    assert check, build_check
    done = subprocess.run([python, "-c", check.group(1)], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.startswith("libvips 8 ")
    where = subprocess.run(
        [python, "-c", "import origin; print(origin.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel's code, not this tree's

    stage = final_stage()
    workdir = tmp_path / dict(stage)["WORKDIR"].lstrip("/")
    shutil.copytree(ROOT / "config", workdir / "config")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_ORIGIN_")}
    for name, args in stage:
        if name == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", args):
                env[key] = value.replace("$PATH", os.environ["PATH"]).replace("/opt/venv", str(venv))
    data = tmp_path / env["IMAGE_ORIGIN_STORAGE_URL"].removeprefix("file:///")
    data.mkdir(parents=True)
    # Loopback and a free port here, where the image listens on 0.0.0.0:8080.
    env.update(
        IMAGE_ORIGIN_STORAGE_URL=f"file://{data}", IMAGE_ORIGIN_HOST="127.0.0.1", IMAGE_ORIGIN_PORT=str(free_port())
    )
    command = json.loads(dict(stage)["CMD"])
    server = subprocess.Popen(
        [str(venv / "bin" / command[0]), *command[1:]], cwd=workdir, env=env, stderr=subprocess.PIPE
    )
    try:
        healthcheck = json.loads(dict(stage)["HEALTHCHECK"].split("CMD", 1)[1])
        deadline = time.monotonic() + 30
        while True:
            probe = subprocess.run([str(venv / "bin" / healthcheck[0]), *healthcheck[1:]], env=env, capture_output=True)
            if probe.returncode == 0:
                break
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, probe.stderr.decode()
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def test_compose_file_is_valid_and_wired():
    compose = shutil.which("docker-compose")
    if compose is None:
        reason = (
            "docker-compose is not installed (apt-get install --no-install-recommends docker-compose; .ci/run does)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI must validate compose.yaml: {reason}")
        pytest.skip(reason)
    done = subprocess.run([compose, "-f", str(COMPOSE), "config"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert {"origin", "worker", "redis", "minio", "buckets"} <= set(services)
    worker, minio = services["worker"]["environment"], services["minio"]["environment"]
    target = next(
        k.removeprefix("MINIO_NOTIFY_WEBHOOK_ENDPOINT_")
        for k in minio
        if k.startswith("MINIO_NOTIFY_WEBHOOK_ENDPOINT_")
    )
    assert (
        minio[f"MINIO_NOTIFY_WEBHOOK_ENDPOINT_{target}"]
        == f"http://worker:{worker['IMAGE_ORIGIN_WORKER_PORT']}/_/events"
    )
    assert minio[f"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_{target}"] == worker["IMAGE_ORIGIN_WORKER_TOKENS"]
    assert f"arn:minio:sqs::{target}:webhook" in " ".join(services["buckets"]["command"])
    for name in ("origin", "worker"):
        env = services[name]["environment"]
        assert env["IMAGE_ORIGIN_REDIS_URL"].startswith("redis://redis:")
        assert "endpoint_url=http://minio:9000" in env["IMAGE_ORIGIN_STORAGE_URL"]
        assert env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
