"""Section `faces`: the face detector (`faces` extra) on a small labelled set of real photographs.

    .venv/bin/python -m bench --only faces [CORPUS_DIR]

The corpus gives the astronaut and the photographs without faces. The other photographs
with faces are OpenCV's sample images from Debian's `opencv-doc` package (BSD/Apache;
fetch once with `apt-get download opencv-doc && dpkg -x opencv-doc_*.deb /tmp/opencv-doc`;
another folder with IMAGE_ORIGIN_BENCH_OPENCV_DATA). A missing image is reported and skipped. One composite is made here from the astronaut: three copies of her
head at 90%, 55% (mirrored) and 35% on the coffee photograph.

Each label is a face's box (x, y, w, h in source pixels) read off the image by eye. A
detection that overlaps an unmatched label with IoU >= 0.3 is a hit; labels left over are
misses, detections left over are false positives. Time is the detector alone (the render's
`faces.detect`, on the decoded image), CPU seconds and wall seconds, median of 3 runs.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pyvips

from bench.common import Run, section
from origin.render import faces

Box = tuple[int, int, int, int]
OPENCV_DATA = Path(
    os.environ.get("IMAGE_ORIGIN_BENCH_OPENCV_DATA", "/tmp/opencv-doc/usr/share/doc/opencv-doc/examples/data")
)

WITH_FACES: dict[str, tuple[str, list[Box]]] = {
    "astronaut": ("corpus:S-png-astronaut.png", [(177, 67, 94, 94)]),
    "messi5": ("opencv:messi5.jpg", [(222, 90, 33, 40)]),
    "basketball1": ("opencv:basketball1.png", [(72, 90, 42, 44)]),
    "basketball2": ("opencv:basketball2.png", [(72, 90, 42, 44)]),
}
WITHOUT_FACES = {
    "chelsea (a cat)": "corpus:S-png-chelsea.png",
    "baboon": "opencv:baboon.jpg",
    "coffee": "corpus:S-png-coffee.png",
    "motorcycle": "corpus:S-png-motorcycle.png",
    "rocket": "corpus:S-jpg-rocket.jpg",
    "home": "opencv:home.jpg",
    "fruits": "opencv:fruits.jpg",
}
_HEAD: Box = (137, 27, 174, 174)
"""The astronaut's head and hair; her face is at (40, 40, 94, 94) inside it."""


def _load(ref: str, corpus: Path, opencv: Path) -> pyvips.Image | None:
    where, name = ref.split(":", 1)
    path = (corpus if where == "corpus" else opencv) / name
    if not path.exists():
        print(f"  missing {path}: skipped")
        return None
    return pyvips.Image.new_from_file(str(path)).copy_memory()


def _composite(corpus: Path) -> tuple[pyvips.Image, list[Box]] | None:
    astronaut, coffee = corpus / "S-png-astronaut.png", corpus / "S-png-coffee.png"
    if not (astronaut.exists() and coffee.exists()):
        return None
    head = pyvips.Image.new_from_file(str(astronaut)).crop(*_HEAD)
    image = pyvips.Image.new_from_file(str(coffee)).resize(1.6)
    labels = []
    for scale, x, y, mirrored in ((0.9, 40, 80, False), (0.55, 400, 120, True), (0.35, 700, 300, False)):
        copy = (head.fliphor() if mirrored else head).resize(scale)
        image = image.insert(copy, x, y)
        labels.append((x + round(40 * scale), y + round(40 * scale), round(94 * scale), round(94 * scale)))
    return image.copy_memory(), labels


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _score(labels: list[Box], found: list[Box]) -> tuple[int, int, int]:
    used: set[int] = set()
    hits = 0
    for label in labels:
        match = next((i for i, box in enumerate(found) if i not in used and _iou(label, box) >= 0.3), None)
        if match is not None:
            used.add(match)
            hits += 1
    return hits, len(labels) - hits, len(found) - len(used)


def _timed(image: pyvips.Image) -> tuple[list[Box], float, float]:
    cpu, wall = [], []
    found: list[Box] = []
    for _ in range(3):
        c, w = time.process_time(), time.perf_counter()
        found = [(f.x, f.y, f.w, f.h) for f in faces.detect(image)]
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return found, statistics.median(cpu), statistics.median(wall)


def run(ctx: Run) -> None:
    section("faces: the detector on labelled photographs (hits, misses, false positives, time)")
    if not faces.available():
        print(f"  skipped: face detection is not installed ({faces.EXTRA})")
        ctx.summary.append(("face detector", "not installed", "-", "SKIP"))
        return
    corpus, opencv = ctx.corpus, OPENCV_DATA
    faces.detect(pyvips.Image.black(64, 64))  # load the cascade outside the timings
    cases: list[tuple[str, pyvips.Image, list[Box]]] = []
    for name, (ref, labels) in WITH_FACES.items():
        image = _load(ref, corpus, opencv)
        if image is not None:
            cases.append((name, image, labels))
    made = _composite(corpus)
    if made is not None:
        cases.append(("composite (3 faces)", *made))
    for name, ref in WITHOUT_FACES.items():
        image = _load(ref, corpus, opencv)
        if image is not None:
            cases.append((name, image, []))
    print(f"detector: OpenCV {faces.cascade_name()}, reduced to <= {faces.DETECT_SIDE} px")
    print(f"{'image':22} {'size':>9} {'faces':>5} {'hits':>4} {'miss':>4} {'f.pos':>5} {'cpu ms':>7} {'wall ms':>7}")
    totals = [0, 0, 0, 0]
    cpus, walls = [], []
    for name, image, labels in cases:
        found, cpu, wall = _timed(image)
        hits, misses, false = _score(labels, found)
        for i, v in enumerate((len(labels), hits, misses, false)):
            totals[i] += v
        cpus.append(cpu)
        walls.append(wall)
        size = f"{image.width}x{image.height}"
        print(f"{name:22} {size:>9} {len(labels):5} {hits:4} {misses:4} {false:5} {cpu * 1000:7.1f} {wall * 1000:7.1f}")
    cpu = statistics.median(cpus) * 1000
    print(
        f"total: {len(cases)} images, {totals[0]} labelled faces, {totals[1]} hits, {totals[2]} misses, "
        f"{totals[3]} false positives; detector time per image: median {cpu:.0f} ms CPU, "
        f"{statistics.median(walls) * 1000:.0f} ms wall (max {max(cpus) * 1000:.0f} ms CPU)"
    )
    ctx.summary.append(("face detector hits / false positives", f"{totals[1]}/{totals[0]}, {totals[3]}", "-", "-"))
    ctx.summary.append(("face detection CPU per image (median)", f"{cpu:.0f} ms", "-", "-"))
