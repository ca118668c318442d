"""schemathesis against a live origin, driven by the served /_/openapi.json.

Positive and negative cases over every documented operation (the URL API with its parameters,
the management API with the token, health, readiness, metrics, the playground), in every phase
(explicit examples, coverage of each parameter's boundaries, random fuzzing, stateful sequences
such as upload-then-delete). It fails on any 5xx and on any response whose status, content type,
headers or body the document does not describe. Bounded: 10 examples per operation and a fixed
seed; output sizes are capped (max_output_side 256) so that no generated combination is slow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.images import encode, quadrants
from tests.live import live_origin

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)


def test_no_5xx_and_every_response_matches_the_document(tmp_path: Path):
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is part of the test extra: pip install -e '.[test]'"
    with live_origin(tmp_path, max_output_side="256") as live:
        # The key the document's example names, so the examples phase reaches real renders.
        request = urllib.request.Request(
            live.url + "/sample.jpg", data=encode(quadrants(64, 48), ".jpg"), method="PUT", headers=live.auth
        )
        urllib.request.urlopen(request).close()
        done = subprocess.run(
            [
                cli,
                "run",
                live.url + "/_/openapi.json",
                "--url",
                live.url,
                "--header",
                f"Authorization: Bearer {live.token}",
                "--checks",
                CHECKS,
                "--mode",
                "all",
                "--max-examples",
                "10",
                "--seed",
                "1",
                "--generation-database",
                "none",
                "--workers",
                "1",
                "--request-timeout",
                "20",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stdout[-15000:] + done.stderr[-3000:]
        assert "generated" in done.stdout and " passed" in done.stdout
