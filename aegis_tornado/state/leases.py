"""Per-key shares counted across replicas through Redis: leases in one sorted set per key.

One mechanism, two uses: tool calls in progress (``MAX_CALLS_PER_KEY``, ``call_slots.py``) and
open event streams (``MAX_SESSIONS_PER_KEY``, ``aegis_tornado.web.fairness``). For each use and
key there is one sorted set, ``aegis:<kind>:<key id>`` (the key's non-secret id, never the key),
whose members are the leases taken (a random id each) scored by the time they end, on Redis's
clock. Taking is one Lua script run atomically by Redis (drop expired leases, count, take up to
what is free): two replicas taking at the same instant cannot both see the last free share.
Giving back is one ``ZREM``.

A replica that dies holding leases cannot give them back: each lease lasts ``lease`` seconds
unless the replica holding it renews it, which it does every third of the lease while it holds
it, so a dead replica's shares are free again at most ``lease`` seconds after it died. The set
itself expires with its newest lease: nothing stays in Redis when nothing is held.

Redis unavailable: ``take`` raises ``StateUnavailable``; the caller refuses (503 with
``Retry-After``) rather than go uncounted. A give-back that cannot reach Redis is left to the
lease. What a replica still holds is renewed at the next tick once Redis answers again; with
``restore`` (event streams, which outlive an outage) a lease that expired meanwhile is put back,
so the count again says what is open.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from .store import StateStore, StateUnavailable

# KEYS[1] = the key's sorted set. ARGV: per_key, lease in ms, then the ids of the leases wanted.
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

# KEYS[1] = the key's sorted set. ARGV: lease in ms, "XX" (renew only leases still present: an
# expired one is not brought back) or "restore" (put back any that expired), then the ids held.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local renewed = 0
for i = 3, #ARGV do
  if ARGV[2] == 'XX' then
    renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, ARGV[i])
  else
    redis.call('ZADD', KEYS[1], now + lease, ARGV[i])
    renewed = renewed + 1
  end
end
if renewed > 0 then
  redis.call('PEXPIRE', KEYS[1], lease)
end
return renewed
"""


class Lease:
    """Leases this process holds for one key; ``release`` gives them back (idempotent)."""

    __slots__ = ("_owner", "key_id", "ids", "_done")

    def __init__(self, owner: SharedLeases, key_id: str, ids: list[str]) -> None:
        self._owner = owner
        self.key_id = key_id
        self.ids = ids
        self._done = False

    def release(self) -> None:
        if self._done:
            return
        self._done = True
        self._owner._give_back(self.key_id, self.ids)

    def transfer(self) -> Lease:
        """The same leases under a new owner: this handle's ``release`` no longer gives them
        back (a stream ended to make room hands its share to the one replacing it, with no
        window in which another replica could take it)."""
        assert not self._done
        self._done = True
        return Lease(self._owner, self.key_id, self.ids)


class SharedLeases:
    """At most ``per_key`` leases of one ``kind`` per key, across every replica."""

    def __init__(
        self, store: StateStore, kind: str, per_key: int, lease: float, *, restore: bool = False
    ) -> None:
        self.store = store
        self.kind = kind
        self.per_key = per_key
        self.lease = lease
        self._lease_ms = max(1, int(lease * 1000))
        self._renew_mode = "restore" if restore else "XX"
        self._take = store.redis.register_script(_TAKE)
        self._renew = store.redis.register_script(_RENEW)
        #: The leases this process holds, per key: renewed while held.
        self._held: dict[str, set[str]] = {}
        self._renewer: asyncio.Task | None = None
        self._releases: set[asyncio.Task] = set()

    def held(self, key_id: str | None = None) -> int:
        """Leases this process holds (for one key, or in all): no I/O."""
        if key_id is not None:
            return len(self._held.get(key_id, ()))
        return sum(len(ids) for ids in self._held.values())

    async def take_lease(self, key_id: str, count: int = 1) -> Lease | None:
        """Up to ``count`` free shares of ``key_id`` (None when none is free)."""
        if count <= 0:
            return None
        ids = [secrets.token_hex(8) for _ in range(count)]
        key = self.store.key(self.kind, key_id)
        args: list[str | int] = [self.per_key, self._lease_ms, *ids]
        taken = int(await self.store.call(self._take(keys=[key], args=args)))
        if taken <= 0:
            return None
        mine = ids[:taken]
        self._held.setdefault(key_id, set()).update(mine)
        self._start_renewing()
        return Lease(self, key_id, mine)

    async def take(self, key_id: str, count: int) -> tuple[int, Callable[[], None]]:
        """``take_lease`` as the call slots use it: how many were taken, and their release."""
        lease = await self.take_lease(key_id, count)
        if lease is None:
            return 0, _nothing
        return len(lease.ids), lease.release

    def _give_back(self, key_id: str, ids: list[str]) -> None:
        held = self._held.get(key_id)
        if held is not None:
            held.difference_update(ids)
            if not held:
                del self._held[key_id]
        task = asyncio.ensure_future(self._zrem(self.store.key(self.kind, key_id), ids))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _zrem(self, key: str, ids: list[str]) -> None:
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
                renewing = list(ids)
                args: list[str | int] = [self._lease_ms, self._renew_mode, *renewing]
                key = self.store.key(self.kind, key_id)
                try:
                    await self.store.call(self._renew(keys=[key], args=args))
                except StateUnavailable:
                    # Retried at the next tick (the store logs the outage once). The other
                    # keys wait too: a hung Redis costs a tick one deadline, not one per key.
                    break
                # A lease given back while its renewal was under way may have reached Redis
                # first and been put back by it: give it back again, now that it is done.
                gone = set(renewing) - self._held.get(key_id, set())
                if gone:
                    await self._zrem(key, list(gone))

    async def close(self) -> None:
        """Stop renewing (what is still held ends with its lease); finish the give-backs
        under way."""
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        if self._releases:
            await asyncio.gather(*self._releases, return_exceptions=True)


def _nothing() -> None:
    return None
