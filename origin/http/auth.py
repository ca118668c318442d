"""Bearer tokens for the management API, and the token generated for a new local install.

With no token configured on the local-folder default, the first start generates one and
keeps it at `_/token` under the data folder (mode 0600, never listed or served), so a
new user can upload at once and keeps the same token across restarts. On S3 nothing is
generated: a token in a bucket would be shared with whoever reads the bucket, so the
management routes answer 403 until tokens are configured.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from ..tokens import Tokens

log = logging.getLogger("origin.auth")
TOKEN_FILE = "_/token"


def management_tokens(configured: Sequence[str], folder: Path | None) -> Tokens:
    """Configured tokens; else, on the local `folder` (None: not local), the generated one; else none (403)."""
    if configured:
        return Tokens(tuple(token.encode() for token in configured))
    if folder is not None:
        return Tokens((local_token(folder.resolve() / TOKEN_FILE).encode(),))
    log.warning("no management tokens are configured: uploads and deletes are refused (set IMAGE_ORIGIN_TOKENS)")
    return Tokens(())


def local_token(path: Path) -> str:
    """The token kept at `path`, generated on first use.

    Written to a temp file and linked into place, which fails when the name exists: two
    processes starting at once on a new folder agree on one token, and a reader never
    sees a half-written file.
    """
    if path.exists():
        return _read(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temp, path)
    except FileExistsError:
        return _read(path)
    finally:
        temp.unlink(missing_ok=True)
    log.warning("generated a management token (kept in %s): %s", path, token)
    return token


def _read(path: Path) -> str:
    token = path.read_text().strip()
    if not token:
        raise RuntimeError(f"{path} is empty: remove it to generate a new management token")
    log.info("management token: the one kept in %s", path)
    return token
