"""Failed-authentication rate limiting per client IP, with bounded memory.

A sliding window: each IP keeps the times of its most recent failures, at most
``max_failures`` of them. Once it holds ``max_failures`` failures that are all inside the window,
the IP is blocked until the oldest of them leaves the window. Successes are never recorded, so a
client that never fails is never limited, and a success does not wipe out a guesser's record.

Memory is bounded by ``max_tracked``: the IPs are kept in least-recently-failed order and the
oldest are evicted first. Those are the ones whose failures are most likely already outside the
window, so a flood of distinct addresses costs a fixed amount of memory and, at worst, forgets
IPs that stopped failing long ago.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class FailureOutcome:
    failures: int  # failures now counted in the window
    blocked: bool  # this failure is the one that blocks the IP


class FailedAuthLimiter:
    def __init__(
        self,
        max_failures: int,
        window: float,
        max_tracked: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_failures = max_failures
        self.window = window
        self.max_tracked = max_tracked
        self._clock = clock
        # A plain list per IP (at most max_failures floats): a third of a deque's memory.
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, ip: str) -> int | None:
        """Seconds until ``ip`` may try again, or None when it is not blocked."""
        times = self._failures.get(ip)
        if times is None:
            return None
        now = self._clock()
        self._expire(times, now)
        if not times:
            del self._failures[ip]
            return None
        if len(times) < self.max_failures:
            return None
        return max(1, math.ceil(times[0] + self.window - now))

    def blocked_count(self) -> int:
        """IPs blocked right now (for metrics: a scan of at most ``max_tracked`` entries)."""
        horizon = self._clock() - self.window
        return sum(
            1
            for times in self._failures.values()
            if len(times) >= self.max_failures and times[0] > horizon
        )

    def record_failure(self, ip: str) -> FailureOutcome:
        now = self._clock()
        times = self._failures.pop(ip, None)
        if times is None:
            times = []
            while len(self._failures) >= self.max_tracked:
                self._failures.popitem(last=False)
        self._failures[ip] = times  # re-inserted: now the most recently failed
        self._expire(times, now)
        times.append(now)
        del times[: -self.max_failures]  # only the most recent max_failures count
        return FailureOutcome(failures=len(times), blocked=len(times) >= self.max_failures)

    def _expire(self, times: list[float], now: float) -> None:
        expired = 0
        while expired < len(times) and times[expired] <= now - self.window:
            expired += 1
        del times[:expired]
