"""Per-IP rates of the OAuth endpoints that create state (client registrations, sign-ins in
progress): in this process for one replica, in Redis with ``STATE_URL`` so that N replicas
still admit the configured rate in all, not N times it."""

from __future__ import annotations

from ..auth.limiter import FailedAuthLimiter
from ..state.limiter import SharedFailedAuthLimiter
from ..state.store import StateStore

WINDOW = 60.0


class AttemptRate:
    """``await take(ip)``: None (the attempt is admitted and counted) or the seconds to wait.
    Shared: ``StateUnavailable`` when Redis cannot be reached (the caller answers 503)."""

    def __init__(self, name: str, per_minute: int, state: StateStore | None = None) -> None:
        self.per_minute = per_minute
        self._local = FailedAuthLimiter(per_minute, WINDOW, 20_000)
        self._shared = (
            SharedFailedAuthLimiter(state, per_minute, WINDOW, name=name)
            if state is not None
            else None
        )

    async def take(self, ip: str) -> int | None:
        if self._shared is not None:
            return await self._shared.take(ip)
        retry_after = self._local.retry_after(ip)
        if retry_after is None:
            self._local.record_failure(ip)
        return retry_after
