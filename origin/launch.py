"""The commands' entry point: once, before anything else, ask glibc's malloc for huge pages.

A render's large buffers (a progressive JPEG's DCT coefficients: 20-100 MiB; a PNG's decoded
rows) are handed back to the system between renders (by the budget's and the idle pool's
`malloc_trim`, and by glibc itself for blocks over its mmap threshold), so the next render
faults them in again: with 4 KiB pages, 10-17k faults and 14-30 ms of CPU for one large JPEG.
glibc 2.35+ can ask the kernel for transparent huge pages (2 MiB) wherever it maps memory
(`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`): 512 times fewer faults. Measured on
../shared/corpus: L-jpg-infinitesea at w=500 98 -> 67 ms; at c=8 over the corpus mix 84 -> 78 ms
of CPU per request, 22.1 -> 24.1 req/s, the same peak RSS (300 vs 304 MiB).

glibc reads its tunables only as a process starts, so the command re-executes itself once
with the tunable added, before importing anything heavy. Nothing happens where it cannot
help (not Linux, not glibc 2.35+, transparent huge pages off) or where the environment
already says what it wants (`GLIBC_TUNABLES` naming `glibc.malloc.hugetlb`, 0 to opt out).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping

TUNABLE = "glibc.malloc.hugetlb"
THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"


def tuned_environment(environ: Mapping[str, str], libc: tuple[str, str], thp_mode: str | None) -> dict[str, str] | None:
    """The environment to re-execute with, or None to run as is.

    `libc` is `platform.libc_ver()`, `thp_mode` the kernel's THP setting file's text (None: unreadable).
    """
    name, version = libc
    if name != "glibc" or _version(version) < (2, 35):
        return None
    if thp_mode is None or not ("[madvise]" in thp_mode or "[always]" in thp_mode):
        return None
    current = environ.get("GLIBC_TUNABLES", "")
    if TUNABLE in current:
        return None  # set already: by us, or by an operator who chose
    tuned = dict(environ)
    tuned["GLIBC_TUNABLES"] = f"{current}:{TUNABLE}=1" if current else f"{TUNABLE}=1"
    return tuned


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(".")[:2])
    except ValueError:
        return ()


def _thp_mode() -> str | None:
    try:
        with open(THP_MODE) as mode:
            return mode.read()
    except OSError:
        return None


def relaunch() -> None:
    """Re-execute this process (same PID, same command line) with huge pages where they help;
    return where they do not, or once they are on."""
    if sys.platform != "linux":
        return
    environment = tuned_environment(os.environ, platform.libc_ver(), _thp_mode())
    if environment is not None:
        try:
            os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)
        except OSError:
            pass  # run as is: slower large renders, nothing else


def main(argv: list[str] | None = None) -> int:
    """`image-origin` (`argv`: the command line after the program, by default the process's own):
    re-execute once with huge pages where they help, then run the command."""
    relaunch()
    from .cli import main as run

    return run(sys.argv[1:] if argv is None else argv)
