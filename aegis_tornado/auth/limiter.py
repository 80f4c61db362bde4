"""Failed-authentication rate limiting per client, with bounded memory.

A sliding window: each client keeps the times of its most recent failures, at most
``max_failures`` of them. Once it holds ``max_failures`` failures that are all inside the window,
the client is blocked until the oldest of them leaves the window. Successes are never recorded,
so a client that never fails is never limited, and a success does not wipe out a guesser's
record.

A client is an IPv4 address, or an IPv6 network of ``ipv6_prefix`` bits (/64 by default): one
host is routinely given a whole /64, so counting single IPv6 addresses would hand an attacker
2^64 fresh allowances.

Memory is bounded by ``max_tracked``. Clients that are failing but not blocked are kept in
least-recently-failed order and the oldest is evicted first, to make room. **A blocked client is
never evicted**: otherwise a spray of other addresses, each failing once, would free it. When
every tracked client is blocked and another one fails, the limiter fails closed: the failures of
all clients it has no room for are counted together, in one shared overflow entry, and once that
entry is blocked every client without an entry of its own is refused (429) until the oldest
block ends. An attacker able to fill the table with blocked clients can thus lock out clients
that were never seen, for at most the window; that is the price of never freeing a guesser.
Raise ``AUTH_TRACKED_IPS`` if it is ever reached (``auth_limiter_full`` is logged once a
window).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger("aegis.auth")

#: The shared entry of clients the limiter had no room for (never a valid address).
OVERFLOW = "overflow"


@dataclass(frozen=True)
class FailureOutcome:
    failures: int  # failures now counted in the window
    blocked: bool  # this failure is the one that blocks the client


class FailedAuthLimiter:
    def __init__(
        self,
        max_failures: int,
        window: float,
        max_tracked: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
        ipv6_prefix: int = 64,
    ):
        self.max_failures = max_failures
        self.window = window
        self.max_tracked = max_tracked
        self.ipv6_prefix = ipv6_prefix
        self._clock = clock
        # A plain list per client (at most max_failures floats): a third of a deque's memory.
        # Clients under the limit, least recently failed first: the ones eviction may drop.
        self._watching: OrderedDict[str, list[float]] = OrderedDict()
        # Blocked clients, in the order they were blocked: never evicted, only expired.
        self._blocked: OrderedDict[str, list[float]] = OrderedDict()
        self._full_logged_at: float | None = None

    def __len__(self) -> int:
        return len(self._watching) + len(self._blocked)

    def client(self, ip: str) -> str:
        """The entry ``ip`` is counted under: itself, or its IPv6 network."""
        if ":" not in ip or self.ipv6_prefix >= 128:
            return ip
        try:
            network = ipaddress.IPv6Network(f"{ip}/{self.ipv6_prefix}", strict=False)
        except ValueError:
            return ip
        return str(network)

    def retry_after(self, ip: str) -> int | None:
        """Seconds until ``ip`` may try again, or None when it is not blocked."""
        now = self._clock()
        self._expire_blocks(now)
        client = self.client(ip)
        if client in self._watching:
            times = self._watching[client]
            self._expire(times, now)
            if not times:
                del self._watching[client]
            return None
        if client not in self._blocked:
            client = OVERFLOW  # unknown here: refused only while the overflow entry is blocked
        blocked = self._blocked.get(client)
        if blocked is None:
            return None
        wait = blocked[0] + self.window - now
        if wait <= 0:
            self._unblock(client, now)
            return None
        return max(1, math.ceil(wait))

    def blocked_count(self) -> int:
        """Clients blocked right now (for metrics): blocks are kept in their own table."""
        self._expire_blocks(self._clock())
        return len(self._blocked)

    def record_failure(self, ip: str) -> FailureOutcome:
        now = self._clock()
        self._expire_blocks(now)
        client = self.client(ip)
        if client in self._blocked:  # a race with retry_after: already blocked, stays so
            return FailureOutcome(failures=len(self._blocked[client]), blocked=False)
        times = self._watching.pop(client, None)
        if times is None:
            times = []
            if not self._make_room(now):
                client = OVERFLOW
                times = self._watching.pop(OVERFLOW, [])
        self._expire(times, now)
        times.append(now)
        del times[: -self.max_failures]  # only the most recent max_failures count
        if len(times) >= self.max_failures:
            self._blocked[client] = times
            return FailureOutcome(failures=len(times), blocked=True)
        self._watching[client] = times  # re-inserted: now the most recently failed
        return FailureOutcome(failures=len(times), blocked=False)

    # --- bookkeeping -----------------------------------------------------------------------

    def _make_room(self, now: float) -> bool:
        """Room for one more client: evict the least recently failed unblocked one if needed.
        False when every tracked client is blocked (the caller counts it as overflow)."""
        while len(self) >= self.max_tracked:
            victim = next((c for c in self._watching if c != OVERFLOW), None)
            if victim is None:
                if self._full_logged_at is None or now - self._full_logged_at >= self.window:
                    self._full_logged_at = now
                    log.warning("auth_limiter_full", tracked=len(self), blocked=len(self._blocked))
                return False
            del self._watching[victim]
        return True

    def _expire_blocks(self, now: float) -> None:
        # Blocks end in roughly the order they began; checking the oldest few keeps it O(1).
        for _ in range(4):
            if not self._blocked:
                return
            client, times = next(iter(self._blocked.items()))
            if times[0] + self.window > now:
                return
            self._unblock(client, now)

    def _unblock(self, client: str, now: float) -> None:
        times = self._blocked.pop(client)
        self._expire(times, now)
        if times:
            # Still failing recently: one more failure blocks it again (a sliding window).
            self._watching[client] = times

    def _expire(self, times: list[float], now: float) -> None:
        expired = 0
        while expired < len(times) and times[expired] <= now - self.window:
            expired += 1
        del times[:expired]
