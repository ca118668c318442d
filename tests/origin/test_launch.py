"""The commands re-execute once with glibc's malloc asking for huge pages (origin/launch.py),
only where that can help, and never against what the environment already says."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from origin.launch import TUNABLE, _thp_mode, tuned_environment
from tests import ROOT
from tests.live import free_port

GLIBC = ("glibc", "2.36")
MADVISE = "always [madvise] never\n"


def test_added_where_it_helps():
    assert tuned_environment({"PATH": "/bin"}, GLIBC, MADVISE) == {"PATH": "/bin", "GLIBC_TUNABLES": f"{TUNABLE}=1"}
    assert tuned_environment({}, GLIBC, "[always] madvise never")["GLIBC_TUNABLES"] == f"{TUNABLE}=1"


def test_other_tunables_are_kept():
    tuned = tuned_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, GLIBC, MADVISE)
    assert tuned is not None
    assert tuned["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{TUNABLE}=1"


@pytest.mark.parametrize(
    ("environ", "libc", "thp"),
    [
        ({"GLIBC_TUNABLES": f"{TUNABLE}=0"}, GLIBC, MADVISE),  # an operator opted out
        ({"GLIBC_TUNABLES": f"{TUNABLE}=1"}, GLIBC, MADVISE),  # the re-executed process itself
        ({}, ("glibc", "2.31"), MADVISE),  # no hugetlb tunable before 2.35
        ({}, ("", ""), MADVISE),  # musl, or not known
        ({}, GLIBC, "always madvise [never]"),  # huge pages off
        ({}, GLIBC, None),  # no such file: not Linux, or a kernel without THP
    ],
    ids=["opted-out", "already-set", "old-glibc", "not-glibc", "thp-never", "no-thp"],
)
def test_left_alone(environ, libc, thp):
    assert tuned_environment(environ, libc, thp) is None


@pytest.mark.skipif(
    sys.platform != "linux" or tuned_environment({}, platform.libc_ver(), _thp_mode()) is None,
    reason="glibc 2.35+ with transparent huge pages needed to see the re-execution",
)
def test_the_server_runs_with_huge_pages_under_its_own_pid(tmp_path: Path):
    """`python -m origin` re-executes in place: the PID a supervisor started is the one serving."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGE_ORIGIN_", "GLIBC_TUNABLES"))}
    env.update(
        IMAGE_ORIGIN_STORAGE_URL=f"file://{tmp_path}", IMAGE_ORIGIN_PORT=str(port), IMAGE_ORIGIN_HOST="127.0.0.1"
    )
    log = open(tmp_path / "origin.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "origin"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_/health", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert process.poll() is None, (tmp_path / "origin.log").read_text()
                assert time.monotonic() < deadline, "the server did not answer within 30 s"
                time.sleep(0.1)
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        assert f"GLIBC_TUNABLES={TUNABLE}=1".encode() in environ
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
