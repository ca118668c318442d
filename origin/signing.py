"""Signed URLs, checked before storage or any cache is touched (pure).

Two schemes share the `s` parameter and are told apart by its shape:
- imgix's: `s` = md5(token + path + "?" + query-without-s), 32 hex digits, computed exactly
  as imgix and its client libraries do, so URLs from existing imgix URL builders verify.
  imgix tokens are short, so any length is accepted.
- ours: `s` = base64url(HMAC-SHA256(key, key-of-object \\n canonical spec \\n expires)),
  43 characters, with keys of at least 32 bytes. Signing the canonical spec (not the raw
  query) means parameter order and spelling cannot be used to mint new variants.
Several keys or tokens may be configured at once, for rotation; comparison is constant-time.
`expires` (Unix seconds) is covered by both and refused once past.

`required` (the `require_signature` setting) says whether an unsigned URL is refused; without it a
signature is checked only when the URL carries one, so signing can be rolled out gradually.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from .errors import BadSignature

MIN_HMAC_KEY_BYTES = 32
_IMGIX = re.compile(r"[0-9a-f]{32}")
_HMAC = re.compile(r"[A-Za-z0-9_-]{43}")
_EXPIRES = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True, slots=True)
class Signer:
    imgix_tokens: tuple[str, ...]
    hmac_keys: tuple[bytes, ...]
    required: bool
    """Every URL must be signed; otherwise unsigned URLs are served and a present `s` is checked."""

    @property
    def enabled(self) -> bool:
        return bool(self.imgix_tokens or self.hmac_keys)

    def checks(self, signature: str | None) -> bool:
        """Whether this request's signature is verified: always when required, else when one is sent.

        Without keys or tokens there is nothing to check `s` against, and it is ignored (as imgix
        ignores `s` on a source that has no secure token).
        """
        return self.required or (self.enabled and signature is not None)


def imgix_signature(token: str, raw_path: str, query_without_s: str) -> str:
    base = token + raw_path + (f"?{query_without_s}" if query_without_s else "")
    return hashlib.md5(base.encode()).hexdigest()  # imgix's scheme, not a password hash


def hmac_signature(key: bytes, object_key: str, canonical_spec: str, expires: str | None) -> str:
    message = f"{object_key}\n{canonical_spec}\n{expires or ''}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def without_signature(raw_query: str) -> str:
    """The raw query string minus its `s` pairs, otherwise byte for byte as sent."""
    return "&".join(part for part in raw_query.split("&") if part and part.split("=", 1)[0] != "s")


def verify(
    signer: Signer,
    *,
    signature: str | None,
    expires: str | None,
    raw_path: str,
    query_without_s: str,
    object_key: str,
    canonical_spec: str,
    now: float,
) -> None:
    """Raise BadSignature unless `signature` is valid under a configured token or key."""
    if not signature:
        raise BadSignature("this URL must be signed (parameter 's')")
    if expires is not None:
        if not _EXPIRES.fullmatch(expires):
            raise BadSignature("expires must be a Unix time in seconds")
        if int(expires) < now:
            raise BadSignature("the signed URL has expired")
    if _IMGIX.fullmatch(signature):
        candidates = [imgix_signature(t, raw_path, query_without_s) for t in signer.imgix_tokens]
    elif _HMAC.fullmatch(signature):
        candidates = [hmac_signature(k, object_key, canonical_spec, expires) for k in signer.hmac_keys]
    else:
        candidates = []
    # Every candidate is compared, so timing does not tell which key nearly matched.
    matched = [hmac.compare_digest(signature, candidate) for candidate in candidates]
    if not any(matched):
        raise BadSignature("the signature does not match this URL")
