"""The face-detection family: `faces`, `faceindex`, `facepad` (fit=facearea and crop=faces are
values of `fit` and `crop`, in core). Detection itself is render/faces.py, an optional extra."""

from __future__ import annotations

from ..errors import InvalidParam
from ..spec import TransformSpec
from .table import Family, Param
from .values import clamped, clamped_decimal


def faces(name: str, raw: str) -> bool:
    if raw != "1":
        raise InvalidParam(f"{name} must be 1 (face boxes in fm=json)")
    return True


def finish(spec: TransformSpec) -> TransformSpec:
    """`faces` acts only with fm=json, `faceindex` and `facepad` only with fit=facearea."""
    if not spec.is_json:
        spec = spec.forget("faces")
    if spec.fit != "facearea":
        spec = spec.forget("faceindex", "facepad")
    return spec


faces.schema = {"type": "integer", "enum": [1], "description": "face boxes in fm=json"}  # type: ignore[attr-defined]

FAMILY = Family(
    "faces",
    params=(
        Param("faces", faces),
        Param("faceindex", clamped(1, 100)),
        Param("facepad", clamped_decimal(1, 10)),
    ),
    finish=finish,
)
