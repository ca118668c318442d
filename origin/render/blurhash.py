"""`fm=blurhash`: the rendered image as a BlurHash string (https://blurha.sh), the compact
placeholder imgix returns for this format: 4 x 3 components (3 x 4 for portrait images),
computed on a copy at most 32 px on a side. A dozen lines of maths: no dependency."""

from __future__ import annotations

import math

import pyvips

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_SAMPLE = 32


def _base83(value: int, length: int) -> str:
    return "".join(_ALPHABET[(value // 83 ** (length - 1 - i)) % 83] for i in range(length))


def _linear(value: int) -> float:
    v = value / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    return round((v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055) * 255)


def _sign_pow(value: float, exponent: float) -> float:
    return math.copysign(abs(value) ** exponent, value)


def encode(image: pyvips.Image) -> str:
    nx, ny = (4, 3) if image.width >= image.height else (3, 4)
    small = image.thumbnail_image(_SAMPLE, height=_SAMPLE, size="down")
    if small.hasalpha():
        small = small.flatten(background=[255, 255, 255])
    small = small.cast("uchar")
    if small.bands < 3:
        small = small.bandjoin([small, small])
    w, h, bands = small.width, small.height, small.bands
    data = bytes(small.write_to_memory())
    pixels = [[_linear(data[i + c]) for c in range(3)] for i in range(0, w * h * bands, bands)]
    factors = []
    for j in range(ny):
        for i in range(nx):
            norm = 1 if i == 0 and j == 0 else 2
            acc = [0.0, 0.0, 0.0]
            for y in range(h):
                wy = math.cos(math.pi * j * y / h)
                for x in range(w):
                    basis = norm * math.cos(math.pi * i * x / w) * wy
                    p = pixels[y * w + x]
                    acc[0] += basis * p[0]
                    acc[1] += basis * p[1]
                    acc[2] += basis * p[2]
            factors.append([v / (w * h) for v in acc])
    dc, ac = factors[0], factors[1:]
    out = _base83((nx - 1) + (ny - 1) * 9, 1)
    maximum = max((abs(v) for f in ac for v in f), default=0.0)
    quantised = max(0, min(82, math.floor(maximum * 166 - 0.5))) if ac else 0
    out += _base83(quantised, 1)
    scale = (quantised + 1) / 166
    out += _base83((_srgb(dc[0]) << 16) + (_srgb(dc[1]) << 8) + _srgb(dc[2]), 4)
    for f in ac:
        q = [max(0, min(18, math.floor(_sign_pow(v / scale, 0.5) * 9 + 9.5))) for v in f]
        out += _base83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return out
