"""harden()'s allocator settings: freed render-sized blocks stay mapped for the next render."""

from __future__ import annotations

import subprocess
import sys

from tests import ROOT

_SCRIPT = """
import ctypes, ctypes.util, resource, sys
if sys.argv[1] == "harden":
    from origin.render import harden
    harden()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 20 << 20  # three blocks like a 12 MP progressive JPEG's coefficient arrays
faults = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [libc.malloc(size) for _ in range(3)]
    for block in blocks:
        ctypes.memset(block, 1, size)
    for block in blocks:
        libc.free(block)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(max(faults[2:]))
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return int(out.stdout)


def test_after_harden_freed_blocks_are_reused_without_page_faults():
    pages = 3 * (20 << 20) // 4096
    assert _faults("plain") > pages // 2  # glibc's defaults: handed back after each round, faulted in again
    assert _faults("harden") < pages // 20  # kept: the next round reuses them
