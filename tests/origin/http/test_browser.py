"""The playground in a real browser: Debian's Chromium driven by Playwright (from PyPI).

One walk through the page as a user would take it, at phone width: paste the token, drop a
real JPEG on the page (the real multipart POST), pick it, change `w` and then `fm`, and check
that the image shown has the new width (its naturalWidth) and format (the Content-Type it was
served with and the magic bytes of the URL the page shows), render the presets, delete the
image (the real DELETE). A screenshot per step goes to tests/out/browser/ (gitignored).
Skips, saying why, only where no Chromium is installed, and never under CI (.ci/run installs it).
"""

from __future__ import annotations

import base64
import os
import shutil
import urllib.request
from pathlib import Path

import pytest

from tests.images import encode, magic, quadrants
from tests.live import ROOT, live_origin

CHROMIUM = os.environ.get("IMAGE_ORIGIN_TEST_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "tests" / "out" / "browser"
# As root on a machine without a network: no sandbox, and nothing Chromium would fetch by itself.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _browser_or_skip() -> object:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "Playwright is not installed (pip install -e '.[test]')"
    else:
        if Path(CHROMIUM).exists():
            return sync_playwright
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test: {reason}")
    pytest.skip(reason)


def test_playground_upload_transform_presets_delete(tmp_path: Path):
    sync_playwright = _browser_or_skip()
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    photo = encode(quadrants(800, 600), ".jpg", Q=90)
    with live_origin(tmp_path) as live, sync_playwright() as playwright:  # type: ignore[operator]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            page.set_default_timeout(20_000)
            problems: list[str] = []
            # The browser's own /favicon.ico request (a 404: no such image) is not the page's doing.
            page.on(
                "console",
                lambda m: (
                    m.type == "error"
                    and not m.location.get("url", "").endswith("/favicon.ico")
                    and problems.append(f"{m.text} ({m.location.get('url')})")
                ),
            )
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("dialog", lambda dialog: dialog.accept())
            shot = _shooter(page)

            page.goto(live.url + "/_/playground")
            assert page.title() == "image-origin playground"
            shot("01-loaded")

            page.fill("#token", live.token)
            page.click("#save-token")
            assert page.evaluate("sessionStorage.getItem('image-origin-token')") == live.token
            assert live.token not in page.url
            page.wait_for_selector("#status:has-text('no images yet')")
            shot("02-token")

            # Drag and drop: a drop event carrying the JPEG, as a file dragged from the desktop.
            page.evaluate(
                """([name, b64]) => {
                    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                    const transfer = new DataTransfer();
                    transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
                    const drop = document.getElementById("drop");
                    drop.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
                    drop.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
                }""",
                ["photo.jpg", base64.b64encode(photo).decode()],
            )
            page.wait_for_selector("#status:has-text('stored photo.jpg (800x600 jpg)')")
            assert (live.data / "photo.jpg").read_bytes() == photo  # the real POST stored the real bytes
            page.wait_for_selector("#list li[data-key='photo.jpg']")
            page.wait_for_selector("#original-meta dd[data-field='size']:has-text('800 x 600')")
            shot("03-uploaded")

            page.fill("#w", "200")
            _wait_result(page, width=200, content_type="image/jpeg")
            shot("04-w200")

            page.select_option("#fm", "webp")
            _wait_result(page, width=200, content_type="image/webp")
            shown = page.input_value("#url")
            assert shown == f"{live.url}/photo.jpg?w=200&fm=webp"
            with urllib.request.urlopen(shown) as response:
                body = response.read()
                assert response.headers["Content-Type"] == "image/webp"
            assert magic(body) == "webp"
            assert page.evaluate("document.getElementById('result-img').naturalHeight") == 150
            meta = page.inner_text("#result-meta")
            assert "X-Cache" in meta and "Server-Timing" in meta and "image/webp" in meta
            assert "srcset" in page.inner_text("#srcset") and "w=640 640w" in page.inner_text("#srcset")
            shot("05-webp")

            page.click("#presets-run")
            for name in ("thumb", "card", "hero"):
                page.wait_for_selector(f"figure[data-preset='{name}'] dd[data-field='bytes']")
            assert page.inner_text("figure[data-preset='card'] dd[data-field='size']") == "600 x 400"
            # card has auto=format: the page asks as a browser's <img> would, so Chromium gets AVIF.
            assert page.inner_text("figure[data-preset='card'] dd[data-field='format']") == "image/avif"
            shot("06-presets")

            # No sideways scrolling at phone width.
            wide = page.evaluate(
                "[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 391)"
                ".map((e) => e.tagName + '#' + e.id + '.' + e.className)"
            )
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide

            page.check("#list li[data-key='photo.jpg'] input[type=checkbox]")
            page.click("#delete")
            page.wait_for_selector("#status:has-text('deleted photo.jpg')")
            assert not (live.data / "photo.jpg").exists()
            shot("07-deleted")
            assert not problems, problems  # no script error, no Content-Security-Policy violation
        finally:
            browser.close()


def _wait_result(page: object, *, width: int, content_type: str) -> None:
    page.wait_for_function(  # type: ignore[attr-defined]
        """([width, type]) => {
            const img = document.getElementById("result-img");
            return img.complete && img.naturalWidth === width && img.dataset.type === type;
        }""",
        arg=[width, content_type],
    )


def _shooter(page: object):
    def shot(name: str) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]

    return shot
