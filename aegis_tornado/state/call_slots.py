"""Per-key tool-call slots (``MAX_CALLS_PER_KEY``) shared by every replica through Redis.

The same rule as ``aegis_tornado.web.fairness.CallSlots`` (at most ``per_key`` of a key's tool
calls in progress at once), counted across replicas: one sorted set per key,
``aegis:calls:<key id>``, whose members are the slots taken (a random id each) scored by the
time their lease ends, on Redis's clock. Taking is one Lua script run atomically by Redis
(drop expired leases, count, take up to what is free): two replicas taking at the same instant
cannot both see the last free slot. Releasing is one ``ZREM``.

A replica that dies holding slots cannot release them: each slot is a lease of ``lease``
seconds, which the replica holding it renews every third of the lease while the call runs, so a
dead replica's slots are free again at most ``lease`` seconds after it died. The key itself
expires with its newest lease: nothing stays in Redis when no call runs.

Redis unavailable: ``StateUnavailable``; the caller refuses the call (503 with
``Retry-After``) rather than run it unchecked, as the shared limiter does. A release that
cannot reach Redis is left to the lease.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import structlog

from .store import StateStore, StateUnavailable

log = structlog.get_logger("aegis.state")

# KEYS[1] = the key's sorted set. ARGV: per_key, lease in ms, then the ids of the slots wanted.
# Returns the number taken (the first ones of the ids given).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local per_key = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local free = per_key - redis.call('ZCARD', KEYS[1])
local taken = math.min(math.max(free, 0), #ARGV - 2)
for i = 1, taken do
  redis.call('ZADD', KEYS[1], now + lease, ARGV[2 + i])
end
if taken > 0 then
  redis.call('PEXPIRE', KEYS[1], lease)
end
return taken
"""

# KEYS[1] = the key's sorted set. ARGV: lease in ms, then the ids of the slots still held.
# Renews those leases (only slots still present: an expired one is not brought back).
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, ARGV[i])
end
if renewed > 0 then
  redis.call('PEXPIRE', KEYS[1], lease)
end
return renewed
"""


class SharedCallSlots:
    """Async twin of ``CallSlots``: ``await take(key_id, count)`` takes up to ``count`` free
    slots and returns how many it took and their release (sync, idempotent)."""

    def __init__(self, store: StateStore, per_key: int, lease: float = 30.0) -> None:
        self.store = store
        self.per_key = per_key
        self.lease = lease
        self._lease_ms = max(1, int(lease * 1000))
        self._take = store.redis.register_script(_TAKE)
        self._renew = store.redis.register_script(_RENEW)
        #: The slots this process holds, per key: renewed while held.
        self._held: dict[str, set[str]] = {}
        self._renewer: asyncio.Task | None = None
        self._releases: set[asyncio.Task] = set()

    async def take(self, key_id: str, count: int) -> tuple[int, Callable[[], None]]:
        if count <= 0:
            return 0, _nothing
        ids = [secrets.token_hex(8) for _ in range(count)]
        key = self.store.key("calls", key_id)
        args: list[str | int] = [self.per_key, self._lease_ms, *ids]
        taken = int(await self.store.call(self._take(keys=[key], args=args)))
        if taken <= 0:
            return 0, _nothing
        mine = ids[:taken]
        self._held.setdefault(key_id, set()).update(mine)
        self._start_renewing()
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            held = self._held.get(key_id)
            if held is not None:
                held.difference_update(mine)
                if not held:
                    del self._held[key_id]
            task = asyncio.ensure_future(self._give_back(key, mine))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)

        return taken, release

    async def _give_back(self, key: str, ids: list[str]) -> None:
        try:
            await self.store.call(self.store.redis.zrem(key, *ids))
        except StateUnavailable:
            pass  # the lease ends them (docs/SCALING.md)

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.ensure_future(self._renew_while_held())

    async def _renew_while_held(self) -> None:
        while self._held:
            await asyncio.sleep(self.lease / 3)
            for key_id, ids in list(self._held.items()):
                if not ids:
                    continue
                args: list[str | int] = [self._lease_ms, *ids]
                try:
                    key = self.store.key("calls", key_id)
                    await self.store.call(self._renew(keys=[key], args=args))
                except StateUnavailable:
                    pass  # retried at the next tick; the store logs the outage once

    async def close(self) -> None:
        """Stop renewing (what is still held ends with its lease); finish the releases under way."""
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        if self._releases:
            await asyncio.gather(*self._releases, return_exceptions=True)


def _nothing() -> None:
    return None
