"""The failed-authentication limiter shared by every replica through Redis.

The same decisions as ``aegis_tornado.auth.limiter.FailedAuthLimiter`` (a sliding window of the
``max_failures`` most recent failures per client, IPv6 counted by network, successes never
recorded), kept in one sorted set per client so that every replica sees a block the moment it is
made. Each decision is one Lua script, run atomically by Redis: there is no read-modify-write
race between replicas, and the window is measured on Redis's clock, so replicas whose clocks
disagree still agree on it. Every key expires with its window.

Memory: no table to bound here: a client's key holds at most ``max_failures`` entries and lives
at most one window; Redis's own ``maxmemory`` is the ceiling (docs/SCALING.md gives the size).

For the metrics, two index sets say at any time how many clients are tracked and blocked
without a ``SCAN``: ``aegis:limiter:tracked`` (each client scored by when its last failure
leaves the window) and ``aegis:limiter:blocked`` (each blocked client scored by when its block
ends). They are kept by the same script, pruned of past members as it runs, and expire with the
window; ``levels`` counts them in O(log n).

Redis unavailable: ``StateUnavailable`` is raised and the caller refuses the request (503 with
``Retry-After``) rather than let an unchecked guess through: the gate fails closed.
"""

from __future__ import annotations

import math
import secrets

from ..auth.limiter import FailedAuthLimiter, FailureOutcome
from .store import StateStore

# KEYS[1] = the client's sorted set (score: failure time in microseconds, Redis's clock),
# KEYS[2], KEYS[3] = the tracked and blocked index sets (scores: microseconds, Redis's clock).
# ARGV: window in microseconds, max_failures, mode ("check" | "fail"), a unique member, the
# client. Returns {failures, blocked_now, wait_microseconds} (wait 0: not blocked).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local function wait()
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
if count >= max then
  return {count, 0, wait()}
end
if ARGV[3] == 'check' then
  return {count, 0, 0}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(max + 1))
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
local function index(key, until_)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  redis.call('ZADD', key, until_, ARGV[5])
  redis.call('PEXPIRE', key, math.ceil(window / 1000))
end
index(KEYS[2], now + window)
count = count + 1
if count >= max then
  local w = wait()
  index(KEYS[3], now + w)
  return {count, 1, w}
end
return {count, 0, 0}
"""

# KEYS = the tracked and blocked index sets. Returns {tracked, blocked} now (Redis's clock).
_LEVELS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return {redis.call('ZCOUNT', KEYS[1], now, '+inf'), redis.call('ZCOUNT', KEYS[2], now, '+inf')}
"""


class SharedFailedAuthLimiter:
    """Async twin of ``FailedAuthLimiter``: ``await retry_after(ip)``, ``await
    record_failure(ip)``; both raise ``StateUnavailable`` when Redis cannot be reached."""

    def __init__(
        self, store: StateStore, max_failures: int, window: float, ipv6_prefix: int = 64
    ) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window = window
        self._window_us = int(window * 1_000_000)
        # Reuses the in-process limiter's rule for what a client is (IPv6 networks).
        self._clients = FailedAuthLimiter(max_failures, window, 1, ipv6_prefix=ipv6_prefix)
        self._script = store.redis.register_script(_SCRIPT)
        self._levels = store.redis.register_script(_LEVELS)
        self._index = [store.key("limiter", "tracked"), store.key("limiter", "blocked")]

    def client(self, ip: str) -> str:
        return self._clients.client(ip)

    async def _run(self, ip: str, mode: str) -> list[int]:
        client = self.client(ip)
        key = self.store.key("authfail", client)
        args: list[str | int] = [
            self._window_us,
            self.max_failures,
            mode,
            secrets.token_hex(8),
            client,
        ]
        result = await self.store.call(self._script(keys=[key, *self._index], args=args))
        return [int(x) for x in result]

    async def levels(self, timeout: float) -> tuple[int, int]:
        """(clients tracked, clients blocked) across every replica, for the metrics: one
        O(log n) script given at most ``timeout`` seconds (``StateUnavailable`` beyond)."""
        result = await self.store.call(self._levels(keys=self._index), timeout)
        return int(result[0]), int(result[1])

    async def retry_after(self, ip: str) -> int | None:
        failures, _, wait_us = await self._run(ip, "check")
        return max(1, math.ceil(wait_us / 1_000_000)) if wait_us else None

    async def record_failure(self, ip: str) -> FailureOutcome:
        failures, blocked_now, _ = await self._run(ip, "fail")
        return FailureOutcome(failures=failures, blocked=bool(blocked_now))
