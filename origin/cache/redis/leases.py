"""Render leases across replicas: the Redis side of `singleflight.Leases`.

A lease is a key set with NX for `lease` seconds, holding a random token, so only its holder
releases it (by a script that compares the token first: an expired lease may have been taken
by another replica since). The holder publishes its result as the variant (see
`SharedVariants.publish`), so claiming and waiting also read the variant, in the same round
trip. When Redis cannot answer, a claim says so ("") and the caller renders without a lease
rather than wait for nobody.
"""

from __future__ import annotations

import secrets

from .client import RedisClient
from .variants import SharedVariants, Stored, decode

_UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class RedisLeases:
    def __init__(self, client: RedisClient, variants: SharedVariants, *, lease: float) -> None:
        self.client = client
        self.variants = variants
        self.lease = lease
        self._lease_ms = int(lease * 1000)
        self._unlock = client.raw.register_script(_UNLOCK)

    async def claim(self, name: str) -> tuple[str | None, Stored | None]:
        """Try for the variant's lease and look for its result, in one round trip.

        The token when this process now holds the lease (None: another replica does; "":
        Redis cannot say, so render without a lease rather than wait for nobody), and the
        variant if it is published already: a holder may have finished since our lookup.
        """
        token = secrets.token_hex(8)

        async def both() -> tuple[str | None, Stored | None]:
            async with self.client.raw.pipeline(transaction=False) as pipe:
                pipe.set(self._key(name), token, nx=True, px=self._lease_ms)
                pipe.get(self.variants.key(name))
                taken, raw = await pipe.execute()
            return (token if taken else None), (decode(raw) if raw is not None else None)

        return await self.client.call(both, ("", None))

    async def unlock(self, name: str, token: str) -> None:
        """Release the lease only if it is still ours (it may have expired and been taken)."""
        await self.client.write(lambda: self._unlock(keys=[self._key(name)], args=[token]))

    async def peek(self, name: str) -> tuple[Stored | None, bool]:
        """The variant if published, and whether its lease is still held: one round trip."""

        async def both() -> tuple[Stored | None, bool]:
            async with self.client.raw.pipeline(transaction=False) as pipe:
                pipe.get(self.variants.key(name))
                pipe.exists(self._key(name))
                raw, held = await pipe.execute()
            return (decode(raw) if raw is not None else None), bool(held)

        return await self.client.call(both, (None, False))

    def _key(self, name: str) -> str:
        return self.client.key("lock", name)
