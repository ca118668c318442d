"""Bearer tokens: the one check for every token-guarded endpoint (management, metrics, the worker's webhook).

Pure (no I/O): which tokens are accepted is decided where they are configured.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from .errors import Forbidden, Unauthorized

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="image-origin"'}


@dataclass(frozen=True, slots=True)
class Tokens:
    """The accepted tokens; empty when none are configured and none could be generated."""

    values: tuple[bytes, ...]

    def check(self, authorization: str | None) -> None:
        """401 without a well-formed `Bearer` header, 403 for a token that is not ours.

        Every configured token is compared, in constant time, whatever matched earlier,
        so the time taken says nothing about which token or how much of it was right.
        """
        if not self.values:
            raise Forbidden("management is disabled: no tokens are configured (set IMAGE_ORIGIN_TOKENS)")
        presented = _bearer(authorization)
        matched = False
        for token in self.values:
            matched |= hmac.compare_digest(presented, token)
        if not matched:
            raise Forbidden("the token is not valid")


def _bearer(authorization: str | None) -> bytes:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized("send 'Authorization: Bearer <token>'", headers=_CHALLENGE)
    return token.encode("utf-8", "surrogatepass")
