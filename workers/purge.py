"""Tell the CDN to drop a source's cached responses after it changed or went (optional hooks).

The origin's responses carry a long max-age, so without a purge a CDN keeps serving an
overwritten image until it expires. Two hooks, each on when configured:
- CloudFront: one CreateInvalidation of `/{key}` and `/{key}*` (the original and every
  query-string variant), through aiobotocore like the S3 backend.
- Cloudflare: purge by cache tag (the origin sends `Cache-Tag: <percent-encoded key>`),
  or by URL prefix `{host}/{key}` when `cloudflare_purge_host` is set.
- nginx (deploy/nginx/): nginx-light has no purge module, so the entries are deleted from
  the proxy_cache folder: every cache file whose stored response has that Cache-Tag.

A purge is a courtesy, never a reason to redo the event: each runs in the background
with a few retries and backoff, failures are logged, and nothing waits for it but
`close`, which lets those in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from origin.keys import cache_tag
from origin.settings import PurgeConfig

log = logging.getLogger("workers.purge")

ATTEMPTS = 4
BACKOFF = 0.5
"""Seconds before the first retry; doubled for each one after (0.5, 1, 2)."""
TIMEOUT = 10.0
"""Seconds for one purge request."""
CLOSE_SECONDS = 15.0
"""How long closing waits for purges in flight (a dead CDN must not hold a shutdown for minutes)."""


class Purge(Protocol):
    name: str

    async def purge(self, key: str, reference: str) -> None:
        """Purge `key`'s responses; raise on failure. `reference` is the same across retries."""
        ...

    async def close(self) -> None: ...


class CloudFront:
    name = "cloudfront"

    def __init__(self, client: Any, stack: contextlib.AsyncExitStack, distribution_id: str) -> None:
        self._client = client
        self._stack = stack
        self.distribution_id = distribution_id

    @classmethod
    async def open(cls, distribution_id: str) -> CloudFront:
        """Credentials and endpoint from the standard AWS chain (AWS_ENDPOINT_URL_CLOUDFRONT too)."""
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        config = AioConfig(
            connect_timeout=TIMEOUT, read_timeout=TIMEOUT, retries={"mode": "standard", "max_attempts": 1}
        )
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            get_session().create_client("cloudfront", region_name="us-east-1", config=config)
        )
        return cls(client, stack, distribution_id)

    async def purge(self, key: str, reference: str) -> None:
        path = "/" + quote(key, safe="/")
        # The same CallerReference on a retry: CloudFront answers with the first invalidation.
        await self._client.create_invalidation(
            DistributionId=self.distribution_id,
            InvalidationBatch={"Paths": {"Quantity": 2, "Items": [path, path + "*"]}, "CallerReference": reference},
        )

    async def close(self) -> None:
        await self._stack.aclose()


class Cloudflare:
    name = "cloudflare"

    def __init__(self, api_base: str, zone_id: str, token: str, host: str | None) -> None:
        self.url = f"{api_base.rstrip('/')}/zones/{zone_id}/purge_cache"
        self.host = host
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}"}, timeout=aiohttp.ClientTimeout(total=TIMEOUT)
        )

    def body(self, key: str) -> dict[str, list[str]]:
        if self.host is not None:
            return {"prefixes": [f"{self.host.rstrip('/')}/{quote(key, safe='/')}"]}
        return {"tags": [cache_tag(key)]}

    async def purge(self, key: str, reference: str) -> None:
        async with self._session.post(self.url, json=self.body(key)) as response:
            reply = await response.json(content_type=None)
            if response.status != 200 or not (isinstance(reply, dict) and reply.get("success")):
                raise RuntimeError(f"HTTP {response.status}: {str(reply)[:200]}")

    async def close(self) -> None:
        await self._session.close()


class NginxCache:
    """Purge by tag from an nginx proxy_cache folder this process can write (same host or volume).

    An nginx cache file holds a binary header, `KEY: ...`, then the upstream's response
    headers as received, then the body. A file whose `Cache-Tag` is the key's tag is
    deleted; nginx treats an entry whose file is gone as a miss and fetches it again. The
    cost is one read of the first HEADER_BYTES of every file in the cache per purge.
    """

    name = "nginx"
    HEADER_BYTES = 16384
    """More than nginx's proxy_buffer_size, which bounds the stored response headers."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def purge(self, key: str, reference: str) -> None:
        removed = await asyncio.to_thread(purge_tag, self.root, cache_tag(key).encode(), self.HEADER_BYTES)
        log.info("nginx cache: purged %d entries tagged %r", removed, key)

    async def close(self) -> None:
        return None


def purge_tag(root: Path, tag: bytes, header_bytes: int = NginxCache.HEADER_BYTES) -> int:
    """Delete the cache files under `root` whose stored response carries `Cache-Tag: tag`."""
    if not root.is_dir():
        raise FileNotFoundError(f"nginx cache folder {root} does not exist")
    removed = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if not _CACHE_FILE.fullmatch(name):
                continue  # nginx's temporary files (use_temp_path=off) are not entries yet
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as handle:
                    head = handle.read(header_bytes)
            except FileNotFoundError:
                continue
            if _tagged(head, tag):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                removed += 1
    return removed


_CACHE_FILE = re.compile(r"[0-9a-f]{32}")


def _tagged(head: bytes, tag: bytes) -> bool:
    """Whether the stored response's headers (up to the blank line) include `Cache-Tag: tag`."""
    headers = head.split(b"\r\n\r\n", 1)[0]
    for line in headers.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"cache-tag" and value.strip() == tag:
            return True
    return False


class Purges:
    """Every configured purge, run in the background; never raises to the event's handler."""

    def __init__(self, targets: list[Purge], attempts: int = ATTEMPTS, backoff: float = BACKOFF) -> None:
        self.targets = targets
        self.attempts = attempts
        self.backoff = backoff
        self.failures = 0
        """Purges that failed every attempt (each one is logged)."""
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, config: PurgeConfig) -> Purges:
        targets: list[Purge] = []
        if config.cloudfront_distribution_id:
            targets.append(await CloudFront.open(config.cloudfront_distribution_id))
        if config.cloudflare_zone_id and config.cloudflare_api_token:
            targets.append(
                Cloudflare(
                    config.cloudflare_api_base,
                    config.cloudflare_zone_id,
                    config.cloudflare_api_token,
                    config.cloudflare_purge_host,
                )
            )
        if config.nginx_cache_path is not None:
            targets.append(NginxCache(config.nginx_cache_path))
        return cls(targets, backoff=BACKOFF)

    def schedule(self, key: str) -> None:
        for target in self.targets:
            task = asyncio.get_running_loop().create_task(self._purge(target, key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _purge(self, target: Purge, key: str) -> None:
        reference = uuid.uuid4().hex
        for attempt in range(1, self.attempts + 1):
            try:
                await target.purge(key, reference)
                return
            except Exception as exc:  # noqa: BLE001 - a failed purge must never fail the event
                if attempt == self.attempts:
                    self.failures += 1
                    log.error("%s purge of %r failed %d times, giving up: %s", target.name, key, attempt, exc)
                    return
                log.warning("%s purge of %r failed (%s); retrying", target.name, key, exc)
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))

    async def close(self) -> None:
        """Let the purges in flight finish (for CLOSE_SECONDS at most), then close the clients."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=CLOSE_SECONDS)
            for task in late:
                task.cancel()
            if late:
                log.error("stopping: %d CDN purges abandoned unfinished", len(late))
            await asyncio.gather(*late, return_exceptions=True)
        for target in self.targets:
            await target.close()
