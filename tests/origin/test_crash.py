"""Batches survive `kill -9` (issue 8, item 8), and a read-only data folder is named (item 7).

A real server in a subprocess on a real socket gets a 40-file POST or a 40-key DELETE
and is killed with SIGKILL while it works, at random moments: some before its batch
reaches storage, most while the batch is being applied (watched from outside: its
journal appears under `_/tmp/`), some after. The folder is looked at as the killed
process left it, then a new server is started on it, and what a user sees is checked:
the listing and GETs show each batch wholly applied or wholly absent, and no temp file
from before the restart is left. Nothing in the server is patched or slowed down.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pyvips

from tests.images import encode
from tests.live import free_port, wait_healthy

TOKEN = "crash-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FILES = 40


def _image(n: int) -> bytes:
    """Distinct, incompressible 96x96 PNGs (~27 KB), so each write has real bytes to sync."""
    noise = pyvips.Image.gaussnoise(96, 96, mean=128, sigma=50, seed=n).cast("uchar")
    return encode(noise.bandjoin([noise.flip("horizontal"), noise.rot180()]).copy(interpretation="srgb"), ".png")


class Server:
    """`image-origin serve` on a data folder, killed with SIGKILL or stopped with SIGTERM."""

    def __init__(self, tmp: Path, data: Path, *prefix: str) -> None:
        self.tmp, self.data, self.prefix = tmp, data, list(prefix)
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> None:
        port = free_port()
        env = {
            **os.environ,
            "IMAGE_ORIGIN_STORAGE_URL": f"file://{self.data}",
            "IMAGE_ORIGIN_TOKENS": TOKEN,
            "IMAGE_ORIGIN_PORT": str(port),
            "IMAGE_ORIGIN_RENDER_QUEUE": "128",
        }
        self.stderr = (self.tmp / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "origin"], env=env, cwd=self.tmp, stderr=self.stderr
        )
        self.base = f"http://127.0.0.1:{port}"

    async def up(self) -> None:
        await wait_healthy(self.base, self.proc, log=self.log)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.stderr.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.stderr.closed:
            self.stderr.close()

    def log(self) -> str:
        return (self.tmp / "server.log").read_text(errors="replace")


def journals(data: Path) -> list[Path]:
    return list((data / "_" / "tmp").glob("*/journal.json"))


def leftovers(data: Path) -> list[Path]:
    tmp = data / "_" / "tmp"
    return sorted(tmp.rglob("*")) if tmp.exists() else []


def present(data: Path, keys: list[str]) -> list[str]:
    return [key for key in keys if (data / key).is_file()]


async def listed(session: aiohttp.ClientSession, base: str, prefix: str) -> list[str]:
    async with session.get(f"{base}/", params={"prefix": prefix, "limit": "1000"}, headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
        return [item["key"] for item in (await resp.json())["images"]]


async def served(session: aiohttp.ClientSession, base: str, key: str) -> bytes | None:
    async with session.get(f"{base}/{key}") as resp:
        if resp.status == 404:
            return None
        assert resp.status == 200, await resp.text()
        return await resp.read()


async def _kill_during(server: Server, send: Any, started: Any, delay: float | None) -> None:
    """Send a request; kill the server `delay` seconds after `started()` holds (None: at a
    random moment from the moment it is sent). The watch runs in a thread of its own, polling
    without pause, so a loaded event loop cannot make it late."""
    request = asyncio.ensure_future(send())
    if delay is None:
        await asyncio.sleep(random.uniform(0, 0.6))
        server.kill()
    else:
        done = threading.Event()
        request.add_done_callback(lambda _: done.set())

        def watch() -> None:
            deadline = time.monotonic() + 30
            while not started() and not done.is_set():
                assert time.monotonic() < deadline, "the batch never reached storage"
            time.sleep(delay)
            server.kill()

        await asyncio.to_thread(watch)
    try:
        await request  # answered before the kill, or cut off by it
    except aiohttp.ClientError:
        pass


async def test_kill_9_during_batches_leaves_each_wholly_applied_or_absent(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    images = {f"b{n:02d}.png": _image(n) for n in range(FILES)}
    server = Server(tmp_path, data)
    rng = random.Random(8)
    # Each phase starts a server, checks what the previous kill left, sends a batch and
    # kills the server: even phases POST 40 files into a new folder, odd phases first
    # POST them (answered 201) and then DELETE them all in one request. The apply step
    # (40 links or renames) takes about 10 ms here, so half the kills are aimed at it
    # (watching the folder from outside for the first key to change), a quarter at the
    # 30 ms after the journal appears, a quarter at a random moment of the whole request
    # (reading and checking 40 files comes first).
    pending: tuple[str, list[str]] | None = None
    partial_seen = 0
    outcomes: list[str] = []
    phase = 0
    try:
        while True:
            server.start()
            await server.up()
            assert leftovers(data) == [], f"phase {phase}: temp files from before the restart are left"
            async with aiohttp.ClientSession() as session:
                if pending is not None:
                    outcomes.append(await _all_or_nothing(session, server.base, *pending, images))
                # Ten phases, and more (up to 20) until two kills have landed mid-batch.
                if phase == 20 or (phase >= 10 and partial_seen >= 2):
                    break
                folder = f"r{phase}"
                keys = [f"{folder}/{name}" for name in images]
                posting = phase % 2 == 0
                if posting:
                    send = _post(session, server, folder, images)
                else:
                    assert await _post(session, server, folder, images)() == 201
                    send = _delete(session, server.base, folder)
                if phase % 4 == 3:
                    await _kill_during(server, send, None, None)
                elif phase % 4 == 2:  # anywhere from the journal's appearance on
                    await _kill_during(server, send, lambda: journals(data), rng.uniform(0, 0.03))
                else:  # inside the apply step: once the first key has changed

                    def changed(keys: list[str] = keys, posting: bool = posting) -> bool:
                        count = len(present(data, keys))
                        return bool(journals(data)) and (count > 0 if posting else count < FILES)

                    await _kill_during(server, send, changed, rng.choice([0, 0, 0.001, 0.002]))
            partial_seen += 0 < len(present(data, keys)) < FILES
            pending = (folder, keys)
            phase += 1
        # The kills did land inside batches, leaving some half applied on disk, which the
        # restart completed or undid (else this test could not fail).
        assert partial_seen >= 2, outcomes
    finally:
        server.stop()


def _post(session: aiohttp.ClientSession, server: Server, folder: str, images: dict[str, bytes]) -> Any:
    async def send() -> int:
        form = aiohttp.FormData()
        for name, body in images.items():
            form.add_field("data", body, filename=name, content_type="image/png")
        async with session.post(f"{server.base}/{folder}", data=form, headers=AUTH) as resp:
            return resp.status

    return send


def _delete(session: aiohttp.ClientSession, base: str, folder: str) -> Any:
    async def send() -> int:
        body = {"images": [f"b{n:02d}.png" for n in range(FILES)]}
        async with session.delete(f"{base}/{folder}", json=body, headers=AUTH) as resp:
            return resp.status

    return send


async def _all_or_nothing(
    session: aiohttp.ClientSession, base: str, folder: str, keys: list[str], images: dict[str, bytes]
) -> str:
    """What a user sees of a batch after the restart: every key listed and served, or none."""
    names = await listed(session, base, f"{folder}/")
    assert names in ([], sorted(keys)), f"{folder}: {len(names)} of {FILES} keys listed after the restart"
    for key in keys:
        assert await served(session, base, key) == (images[key.split("/")[1]] if names else None)
    return "present" if names else "absent"


def _can_mount_read_only(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    command = f"mount --bind -o ro {probe} {probe} && ! touch {probe}/x 2>/dev/null"
    return subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True).returncode == 0


@pytest.fixture
def read_only_mounts(tmp_path: Path) -> None:
    if not _can_mount_read_only(tmp_path):
        pytest.skip("needs `unshare -rm` (user and mount namespaces) to mount a folder read-only")


def test_a_read_only_data_folder_is_refused_at_start_in_one_line(tmp_path: Path, read_only_mounts: None):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.png").write_bytes(_image(1))
    script = f'mount --bind -o ro {data} {data} && exec "$@"'
    env = {**os.environ, "IMAGE_ORIGIN_STORAGE_URL": f"file://{data}", "IMAGE_ORIGIN_PORT": str(free_port())}
    for extra in ({}, {"IMAGE_ORIGIN_DERIVED_STORAGE_URL": "none", "IMAGE_ORIGIN_TOKENS": TOKEN}):
        result = subprocess.run(
            ["unshare", "-rm", "sh", "-c", script, "sh", sys.executable, "-m", "origin"],
            env={**env, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        # One line says why (after the start-up lines naming the settings used).
        refusals = [line for line in result.stderr.splitlines() if line.startswith("image-origin:")]
        assert len(refusals) == 1, result.stderr
        assert str(data) in refusals[0] and "read-only" in refusals[0]
        assert "Traceback" not in result.stderr


async def test_a_folder_turned_read_only_while_serving_answers_507_naming_it(tmp_path: Path, read_only_mounts: None):
    data = tmp_path / "data"
    data.mkdir()
    script = f'mount --bind {data} {data} && exec "$@"'
    server = Server(tmp_path, data, "unshare", "-rm", "sh", "-c", script, "sh")
    server.start()
    try:
        await server.up()
        image = _image(2)
        async with aiohttp.ClientSession() as session:
            async with session.put(f"{server.base}/keep.png", data=image, headers=AUTH) as resp:
                assert resp.status == 201
            assert server.proc is not None
            remount = ["nsenter", "-t", str(server.proc.pid), "-U", "-m", "mount", "-o", "remount,bind,ro", str(data)]
            subprocess.run(remount, check=True)
            for method, path, body in (
                ("DELETE", "/keep.png", None),
                ("PUT", "/new.png", image),
                ("POST", "/up", None),
            ):
                kwargs: dict[str, Any] = {"data": body} if body else {}
                if method == "POST":
                    form = aiohttp.FormData()
                    form.add_field("data", image, filename="n.png", content_type="image/png")
                    kwargs = {"data": form}
                async with session.request(method, f"{server.base}{path}", headers=AUTH, **kwargs) as resp:
                    text = await resp.text()
                    assert resp.status == 507, (method, text)
                    error = (await resp.json())["error"]
                    assert error["code"] == "storage_unwritable"
                    assert "storage is read-only" in error["message"]
            assert await served(session, server.base, "keep.png") == image  # reads go on
    finally:
        server.stop()


async def test_opening_the_folder_leaves_a_live_writers_batch_alone(tmp_path: Path):
    """Recovery takes only what dead writers left: a batch in flight (its staging folder held)
    in another process, or another instance here, is neither rolled back nor swept."""
    from origin.storage import LocalStorage
    from origin.storage.staging import Intent, Stage

    data = tmp_path / "data"
    first = LocalStorage(data)
    live = Stage(first._tmp, first._gate)
    live.write("0", b"staged bytes")
    live.begin(Intent("create", [("k.png", "0")]))
    dead = data / "_" / "tmp" / "w-dead"
    dead.mkdir()
    (dead / "0").write_bytes(b"left by a killed process")
    LocalStorage(data)  # a second process opening the folder
    assert (live.path / "journal.json").exists() and (live.path / "0").exists()
    assert not dead.exists()
    live.commit()
    live.close()
    assert leftovers(data) == []
