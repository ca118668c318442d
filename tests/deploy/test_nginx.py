"""deploy/nginx/image-origin.conf in front of a real origin, in Debian's nginx (nginx-light).

The recipe is used as shipped, with only its three EDIT lines (the origin's address, the cache
folder, the listen port) substituted; nginx runs in the foreground with a temporary prefix on a
free port. What is checked, from outside (X-Cache-Status, the bytes served) and from the origin's
own request counters (/_/metrics):
- a repeat is served by the edge: HIT, and the origin is not asked again;
- `auto=format` under a mix of real browsers' Accept headers makes one cached copy per
  normalised Accept (three at most), each in the format the origin would pick for that browser;
- an expired entry is revalidated with If-None-Match: the origin answers 304, the edge REVALIDATED;
- an overwrite, once the purge hook (workers/purge.py NginxCache) has run, is never served stale.
Skips, saying why, only where nginx is not installed, and never under CI (.ci/run installs it).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from origin.formats import negotiate
from tests.images import decode, encode, flat, magic, pixel, quadrants
from tests.live import ROOT, Live, free_port, live_origin

NGINX = os.environ.get("IMAGE_ORIGIN_TEST_NGINX", "/usr/sbin/nginx")
RECIPE = ROOT / "deploy" / "nginx" / "image-origin.conf"
BROWSERS = {
    "chrome": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    "edge": "image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    "firefox": "image/avif,image/webp,*/*",
    "firefox-old": "image/webp,*/*",
    "safari-16": "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
    "safari-13": "image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5",
    "curl": "*/*",
    "none": "",
    "avif-refused": "image/avif;q=0, image/webp",
    "both-refused": "image/avif;q=0.0,image/webp;q=0,image/jpeg",
    "upper-case": "IMAGE/AVIF,*/*",
}


@dataclass(frozen=True)
class Edge:
    url: str
    cache: Path
    origin: Live


def _nginx_or_skip() -> None:
    if Path(NGINX).exists():
        return
    reason = f"no nginx at {NGINX} (apt-get install nginx-light; .ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the nginx test: {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def edge(tmp: Path, **origin_settings: str) -> Iterator[Edge]:
    """A real origin with nginx in front, running the recipe; both stopped at the end."""
    _nginx_or_skip()
    prefix = tmp / "nginx"
    cache = prefix / "cache"
    (prefix / "conf.d").mkdir(parents=True)
    port = free_port()
    settings = {"nginx_cache_path": str(cache), "metrics_public": "true", **origin_settings}
    with live_origin(tmp, **settings) as origin:
        recipe = RECIPE.read_text()
        for pattern, value in (
            (r"server 127\.0\.0\.1:8080;", f"server {origin.url.removeprefix('http://')};"),
            (r"proxy_cache_path /var/cache/nginx/image-origin", f"proxy_cache_path {cache}"),
            (r"listen 80;", f"listen 127.0.0.1:{port};"),
        ):
            recipe, count = re.subn(pattern, value, recipe)
            assert count == 1, f"the recipe's EDIT line {pattern!r} changed: update this test"
        (prefix / "conf.d" / "image-origin.conf").write_text(recipe)
        (prefix / "nginx.conf").write_text(
            # Only what a distribution's nginx.conf provides around conf.d/: paths inside the prefix.
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    include {prefix}/conf.d/*.conf;
}}
"""
        )
        process = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for(url, process, prefix)
            yield Edge(url=url, cache=cache, origin=origin)
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_for(url: str, process: subprocess.Popen[bytes], prefix: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            log = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
            raise RuntimeError(f"nginx exited with {process.returncode}: {output}{log}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url + "/_/health", timeout=1):
                return
        time.sleep(0.05)
    raise RuntimeError("nginx did not answer within 10 s")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def call(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None) -> Answer:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers.items()), error.read())


def origin_count(origin: Live, status: int, route: str = "image") -> float:
    """The origin's own count of answers with this route and status (its Prometheus counter)."""
    text = call(origin.url + "/_/metrics").body.decode()
    pattern = rf'^image_origin_requests_total\{{(?=[^}}]*route="{route}")(?=[^}}]*status="{status}")[^}}]*\}} (\S+)$'
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def put(edge_: Edge, key: str, data: bytes, headers: dict[str, str] | None = None) -> Answer:
    """Store through the edge, and wait for the purge hook that the write triggers to have run."""
    purges = purged(edge_, key)
    answer = call(f"{edge_.url}/{key}", "PUT", data, {**edge_.origin.auth, **(headers or {})})
    assert answer.status in (200, 201), answer.body
    deadline = time.monotonic() + 15
    while purged(edge_, key) == purges:
        assert time.monotonic() < deadline, f"no purge of {key!r} logged: {edge_.origin.log.read_text()[-2000:]}"
        time.sleep(0.05)
    return answer


def purged(edge_: Edge, key: str) -> int:
    """How many purges of `key` the origin's purge hook has logged (it runs after the write, in the background)."""
    return edge_.origin.log.read_text().count(f"entries tagged {key!r}")


def cached_keys(cache: Path) -> list[str]:
    """The KEY line of every entry in the nginx cache folder."""
    keys = []
    for path in cache.rglob("*"):
        if path.is_file() and re.fullmatch(r"[0-9a-f]{32}", path.name):
            found = re.search(rb"\nKEY: ([^\n]*)\n", path.read_bytes()[:4096])
            if found:
                keys.append(found.group(1).decode())
    return keys


def test_repeats_are_served_by_the_edge(tmp_path: Path):
    with edge(tmp_path) as e:
        put(e, "shoe.jpg", encode(quadrants(400, 300), ".jpg"))
        before = origin_count(e.origin, 200)
        first = call(f"{e.url}/shoe.jpg?w=100")
        assert first.status == 200 and first.headers["X-Cache-Status"] == "MISS"
        assert origin_count(e.origin, 200) == before + 1
        for _ in range(5):
            again = call(f"{e.url}/shoe.jpg?w=100")
            assert again.headers["X-Cache-Status"] == "HIT"
            assert again.body == first.body
            assert again.headers["Cache-Tag"] == "shoe.jpg"
        assert origin_count(e.origin, 200) == before + 1  # the origin was not asked again
        # The management API passes through and is never cached.
        listing = call(f"{e.url}/?prefix=shoe", headers=e.origin.auth)
        assert listing.status == 200 and listing.headers.get("X-Cache-Status") == "BYPASS"
        assert b"shoe.jpg" in listing.body


def test_auto_format_keeps_one_copy_per_normalised_accept(tmp_path: Path):
    with edge(tmp_path) as e:
        put(e, "hat.png", encode(quadrants(300, 200), ".png"))
        before = origin_count(e.origin, 200)
        formats = {}
        for browser, accept in BROWSERS.items():
            for _ in range(2):
                answer = call(f"{e.url}/hat.png?w=120&auto=format", headers={"Accept": accept} if accept else {})
                assert answer.status == 200, browser
                expected = {"avif": "avif", "webp": "webp", "legacy": "png"}[negotiate(accept).value]
                assert magic(answer.body) == expected, (browser, accept)
                assert "Accept" in answer.headers.get("Vary", "")
                formats[browser] = expected
        assert set(formats.values()) == {"avif", "webp", "png"}
        entries = [key for key in cached_keys(e.cache) if "/hat.png?w=120&auto=format" in key]
        assert sorted(entries) == sorted(f"127.0.0.1/hat.png?w=120&auto=format|{c}" for c in ("avif", "webp", "other"))
        assert origin_count(e.origin, 200) == before + 3  # one render per normalised Accept
        # Without auto=format the answer does not depend on Accept: one copy, whatever the browser.
        for accept in BROWSERS.values():
            call(f"{e.url}/hat.png?w=90", headers={"Accept": accept} if accept else {})
        assert [key for key in cached_keys(e.cache) if "/hat.png?w=90" in key] == ["127.0.0.1/hat.png?w=90|"]


def test_an_expired_entry_is_revalidated_with_a_304(tmp_path: Path):
    with edge(tmp_path, cache_control="public, max-age=1") as e:
        put(e, "cap.jpg", encode(quadrants(200, 200), ".jpg"))
        first = call(f"{e.url}/cap.jpg?w=50&fm=webp")
        assert first.headers["X-Cache-Status"] == "MISS"
        assert call(f"{e.url}/cap.jpg?w=50&fm=webp").headers["X-Cache-Status"] == "HIT"
        full, not_modified = origin_count(e.origin, 200), origin_count(e.origin, 304)
        time.sleep(2.5)  # nginx counts whole seconds: an entry stored at t with max-age=1 is fresh until t+2
        again = call(f"{e.url}/cap.jpg?w=50&fm=webp")
        assert again.headers["X-Cache-Status"] == "REVALIDATED", (
            first.headers.get("Cache-Control"),
            first.headers["Date"],
            again.headers["Date"],
        )
        assert again.body == first.body and again.headers["ETag"] == first.headers["ETag"]
        assert origin_count(e.origin, 304) == not_modified + 1  # the origin answered If-None-Match with 304
        assert origin_count(e.origin, 200) == full  # and sent no body


def test_an_overwrite_is_never_served_stale_after_the_purge(tmp_path: Path):
    urls = ["/boot.jpg", "/boot.jpg?w=64", "/boot.jpg?w=64&auto=format", "/boot.jpg?w=32&h=32&fit=crop"]
    accepts = [BROWSERS["chrome"], BROWSERS["safari-13"]]
    with edge(tmp_path) as e:
        put(e, "other.jpg", encode(quadrants(100, 100), ".jpg"))
        old = put(e, "boot.jpg", encode(flat(128, 128, (255, 0, 0)), ".jpg"))
        call(f"{e.url}/other.jpg?w=10")
        for url in urls:
            for accept in accepts:
                call(e.url + url, headers={"Accept": accept})
                assert call(e.url + url, headers={"Accept": accept}).headers["X-Cache-Status"] == "HIT"
        put(e, "boot.jpg", encode(flat(128, 128, (0, 0, 255)), ".jpg"), {"If-Match": old.headers["ETag"]})
        assert not [key for key in cached_keys(e.cache) if "/boot.jpg" in key]
        assert [key for key in cached_keys(e.cache) if "/other.jpg" in key]  # other keys are kept
        for url in urls:
            for accept in accepts:
                for _ in range(2):
                    answer = call(e.url + url, headers={"Accept": accept})
                    assert answer.status == 200
                    r, g, b = pixel(decode(answer.body), 5, 5)[:3]
                    assert b > 200 and r < 60, (url, accept, answer.headers["X-Cache-Status"], (r, g, b))
        assert call(f"{e.url}/other.jpg?w=10").headers["X-Cache-Status"] == "HIT"
