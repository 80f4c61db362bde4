"""Per-IP rates of the OAuth endpoints that create state (client registrations, sign-ins in
progress): in this process for one replica, in Redis with ``STATE_URL`` so that N replicas
still admit the configured rate in all, not N times it.

The shared window is the failed-auth limiter's approach (``state/limiter.py``): one sorted set
per client, ``aegis:oauth:rate:<name>:<client>``, and one Lua script that drops what left the
window, counts, and admits (and records) the attempt or says how long to wait, atomically on
Redis's clock. It is kept apart from that limiter so that sign-in attempts never count as
failed authentications (nor in its metrics).
"""

from __future__ import annotations

import math
import secrets

from ..auth.limiter import FailedAuthLimiter
from ..state.store import StateStore

WINDOW = 60.0

# KEYS[1] = the client's sorted set (score: attempt time in ms, Redis's clock).
# ARGV: window in ms, attempts allowed, a unique member. Returns the ms to wait (0: admitted).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""


class AttemptRate:
    """``await take(ip)``: None (the attempt is admitted and counted) or the seconds to wait.
    Shared: ``StateUnavailable`` when Redis cannot be reached (the caller answers 503)."""

    def __init__(self, name: str, per_minute: int, state: StateStore | None = None) -> None:
        self.name = name
        self.per_minute = per_minute
        self._local = FailedAuthLimiter(per_minute, WINDOW, 20_000)
        self._state = state
        self._script = state.redis.register_script(_TAKE) if state is not None else None

    async def take(self, ip: str) -> int | None:
        if self._state is None or self._script is None:
            retry_after = self._local.retry_after(ip)
            if retry_after is None:
                self._local.record_failure(ip)
            return retry_after
        key = self._state.key("oauth", "rate", self.name, self._local.client(ip))
        args: list[str | int] = [int(WINDOW * 1000), self.per_minute, secrets.token_hex(8)]
        wait_ms = int(await self._state.call(self._script(keys=[key], args=args)))
        return max(1, math.ceil(wait_ms / 1000)) if wait_ms else None
