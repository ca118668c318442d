"""Face detection for `crop=faces`, `fit=facearea`, `faces=1` and `auto=redeye` (optional extra).

The detector is OpenCV's Viola-Jones cascade (`haarcascade_frontalface_alt2.xml`), whose
model ships inside the `opencv-python-headless` 4.x wheel (`cv2.data`): nothing is fetched
at run time, it needs no GPU, and on a copy reduced to `DETECT_SIDE` pixels it takes ~100 ms
of CPU. It finds upright, roughly frontal faces; profiles and small faces in
crowds are missed (bench/faces.py measures it). OpenCV is heavy (~60 MB), so it is the
`faces` extra: without it these parameters answer 501 naming the extra, never a silent
centre crop.

Detection runs in the render pool like every other pixel operation, between the
guard's deadline checks; OpenCV is held to one thread so a detection uses one core.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from dataclasses import dataclass
from typing import Any

import pyvips

from ..errors import FacesUnavailable

EXTRA = "pip install 'image-origin[faces]'"
DETECT_SIDE = 480
"""Longest side of the copy the detector sees: faces under ~1/24 of it (20 px) are not found.
At 640 px the detector found one more face of bench/faces.py's set for three times the CPU."""
_CASCADE = "haarcascade_frontalface_alt2.xml"
_MIN_FACE = 20
"""Smallest face, in pixels of the reduced copy (the cascade's own window is 20x20)."""

_local = threading.local()


@dataclass(frozen=True, slots=True)
class Face:
    """A face's box in the pixels of the image it was found in."""

    x: int
    y: int
    w: int
    h: int

    def scaled(self, fx: float, fy: float) -> Face:
        return Face(round(self.x * fx), round(self.y * fy), max(1, round(self.w * fx)), max(1, round(self.h * fy)))


@functools.cache
def available() -> bool:
    """True when the `faces` extra (OpenCV with its bundled cascades) is installed."""
    return importlib.util.find_spec("cv2") is not None


def require(parameter: str) -> None:
    """Raise the 501 that names the extra when face detection is asked for but absent."""
    if not available():
        raise FacesUnavailable(f"{parameter} needs face detection, which is not installed here: {EXTRA}")


def cascade_name() -> str:
    return _CASCADE


def _cascade() -> Any:
    """One classifier per render thread: OpenCV's cascade keeps per-call state on the object."""
    cascade = getattr(_local, "cascade", None)
    if cascade is None:
        import cv2

        cv2.setNumThreads(1)
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + _CASCADE)
        if cascade.empty():
            raise FacesUnavailable(f"the face model {_CASCADE} is missing from OpenCV's data: {EXTRA}")
        _local.cascade = cascade
    return cascade


def grey_array(image: pyvips.Image) -> Any:
    """The image as an 8-bit greyscale numpy array (alpha flattened onto white)."""
    import numpy as np

    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if image.bands >= 3:
        image = image.colourspace("b-w")
    grey = image.extract_band(0).cast("uchar")
    return np.frombuffer(grey.write_to_memory(), dtype=np.uint8).reshape(grey.height, grey.width)


def detect(image: pyvips.Image) -> list[Face]:
    """Faces in `image`, largest first (ties left to right), in `image`'s pixel coordinates."""
    require("face detection")
    import cv2

    scale = min(1.0, DETECT_SIDE / max(image.width, image.height))
    small = image.resize(scale) if scale < 1 else image
    grey = cv2.equalizeHist(grey_array(small))
    found = _cascade().detectMultiScale(grey, scaleFactor=1.15, minNeighbors=4, minSize=(_MIN_FACE, _MIN_FACE))
    fx, fy = image.width / small.width, image.height / small.height
    faces = [Face(int(x), int(y), int(w), int(h)).scaled(fx, fy) for (x, y, w, h) in found]
    return sorted(faces, key=lambda f: (-f.w * f.h, f.x, f.y))


def union(faces: list[Face]) -> Face:
    """The smallest box holding every face."""
    left, top = min(f.x for f in faces), min(f.y for f in faces)
    right, bottom = max(f.x + f.w for f in faces), max(f.y + f.h for f in faces)
    return Face(left, top, right - left, bottom - top)


def centre_on(region: tuple[int, int, int, int], target: Face, width: int, height: int) -> tuple[int, int, int, int]:
    """`region` (its size kept) moved so its centre is the target's, within the image."""
    _, _, rw, rh = region
    x = round(target.x + target.w / 2 - rw / 2)
    y = round(target.y + target.h / 2 - rh / 2)
    return max(0, min(width - rw, x)), max(0, min(height - rh, y)), rw, rh


def face_area(face: Face, facepad: float, ratio: float | None, width: int, height: int) -> tuple[int, int, int, int]:
    """The region `fit=facearea` keeps: the face grown by `facepad` face-sizes (half on each
    side), widened or heightened to `ratio` (w/h) when one is asked, and kept inside the
    image (shrunk, keeping the ratio, when the image is too small)."""
    rw = face.w * (1 + facepad)
    rh = face.h * (1 + facepad)
    if ratio is not None:
        if rw / rh < ratio:
            rw = rh * ratio
        else:
            rh = rw / ratio
    k = min(1.0, width / rw, height / rh)
    rw, rh = max(1, min(width, round(rw * k))), max(1, min(height, round(rh * k)))
    return centre_on((0, 0, rw, rh), face, width, height)
