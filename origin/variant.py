"""What a GET for a transformed image asks, and the one variant it comes to (pure).

The GET path hands these two values down, never their parts one by one:

- `VariantRequest`: the source key, the spec and the formats the client accepts, built once
  by the HTTP layer (and by the worker, once for each variant it pre-renders);
- `Variant`: that request pinned to one version of the source (`ImageService.resolve`),
  named by its variant key. The key is the response's strong ETag and the variant's name in
  every cache and in derived storage, so it is computed before any pixel is touched.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .formats import Accepts
from .spec import TransformSpec, canonical

if TYPE_CHECKING:
    from .storage import ObjectInfo

PIPELINE_VERSION = "9"
"""Bump when rendering changes what bytes a spec produces, so old variants are not served."""


@dataclass(frozen=True, slots=True)
class VariantRequest:
    """A transformed image, as asked: no version of anything is known yet."""

    key: str
    spec: TransformSpec
    accepts: Accepts

    def at(self, source: ObjectInfo, others: str = "") -> Variant:
        """This request at version `source` of its key; `others` names the versions of the other
        stored images the spec names (`mark`, `mask`, `blend`), one `name=etag` a line."""
        return Variant(self, source, variant_key(self.key, source.etag, self.spec, self.accepts, others))


@dataclass(frozen=True, slots=True)
class Variant:
    """A request pinned to one version of its source: what to look up, render and store."""

    request: VariantRequest
    source: ObjectInfo
    """The version of the source this variant is rendered from."""
    etag: str
    """The variant key: the response's ETag, and the variant's name in the caches and derived storage."""


@functools.lru_cache(maxsize=65536)
def variant_key(key: str, source_etag: str, spec: TransformSpec, accepts: Accepts, others: str = "") -> str:
    """hash(pipeline version, key, source version, canonical spec, negotiated format, and the
    versions of the other stored images the spec names).

    The Accept header counts only under `auto=format` without an explicit `fm`, and only
    reduced to three values, so one spec has at most three variants. Memoised on the request's
    parts, not on the request: a hit then compares the spec by identity (a hot path).
    """
    negotiated = accepts.value if spec.negotiates else "-"
    material = "\n".join((PIPELINE_VERSION, key, source_etag, _variant_text(spec), negotiated, others))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=4096)
def _variant_text(spec: TransformSpec) -> str:
    """The canonical spec without `dl`, which changes headers but not bytes (memoised: hot path)."""
    return canonical(dataclasses.replace(spec, dl=None))
