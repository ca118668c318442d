"""Storage URLs parsed and checked without importing any backend (settings validates with it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def local_folder(url: str) -> Path | None:
    """The folder a `file://PATH` URL names (relative paths stay relative); None for any other scheme."""
    parts = urlsplit(url)
    return Path(parts.netloc + parts.path) if parts.scheme == "file" else None


_S3_OPTIONS = frozenset({"endpoint_url", "region", "addressing_style"})


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str
    """Prepended to every key: "" or ends with "/"."""
    endpoint_url: str | None
    region: str | None
    addressing_style: str


def parse_s3_url(url: str) -> S3Location:
    """`s3://BUCKET[/PREFIX][?endpoint_url=...&region=...&addressing_style=path|virtual|auto]`."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError("the storage URL must be s3://BUCKET[/PREFIX][?endpoint_url=...]")
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - _S3_OPTIONS)
    if unknown:
        raise ValueError(f"unknown storage URL option(s) {', '.join(unknown)}; known: {', '.join(sorted(_S3_OPTIONS))}")
    endpoint_url = query.get("endpoint_url") or None
    # Path style by default with a custom endpoint: MinIO and RGW accept it without wildcard DNS.
    style = query.get("addressing_style") or ("path" if endpoint_url else "auto")
    if style not in ("auto", "path", "virtual"):
        raise ValueError("the storage URL's addressing_style must be auto, path or virtual")
    prefix = parts.path.strip("/")
    return S3Location(
        bucket=parts.netloc,
        prefix=f"{prefix}/" if prefix else "",
        endpoint_url=endpoint_url,
        region=query.get("region") or None,
        addressing_style=style,
    )
