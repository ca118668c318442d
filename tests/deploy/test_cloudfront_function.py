"""The CloudFront Function of deploy/cloudfront/ run in Node.js: it must reduce Accept exactly as the
origin's `negotiate` does, for auto=format URLs only. (CloudFront itself is not tested here.)"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from origin.formats import Accepts, negotiate
from tests.deploy.test_nginx import BROWSERS
from tests.live import ROOT

FUNCTION = ROOT / "deploy" / "cloudfront" / "accept-normalise.js"
SENT = {
    Accepts.AVIF: "image/avif,image/webp,*/*",
    Accepts.WEBP: "image/webp,*/*",
    Accepts.LEGACY: "image/jpeg,image/png,*/*",
}


def run(cases: list[dict[str, object]]) -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    script = (
        f"const f = require({json.dumps(str(FUNCTION))});"
        "const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(cases.map((c) => f.handler({request: c}).headers.accept.value)));"
    )
    done = subprocess.run([node, "-e", script], input=json.dumps(cases), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_accept_is_reduced_as_the_origin_negotiates():
    accepts = [*BROWSERS.values(), "image/webp;q=0.5", "image/avif; q=0.001", "text/html", "image/AVIF;Q=0"]
    for auto in ("format", "compress,format", "format%2Ccompress"):
        cases = [{"headers": {"accept": {"value": a}}, "querystring": {"auto": {"value": auto}}} for a in accepts]
        assert run(cases) == [SENT[negotiate(a)] for a in accepts], auto


def test_other_urls_get_one_accept():
    cases = [
        {"headers": {"accept": {"value": BROWSERS["chrome"]}}, "querystring": {}},
        {"headers": {}, "querystring": {"auto": {"value": "compress"}}},
        {"headers": {"accept": {"value": "image/avif"}}, "querystring": {"w": {"value": "100"}}},
    ]
    assert run(cases) == [SENT[Accepts.LEGACY]] * 3
