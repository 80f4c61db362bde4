"""The connection to the shared state store (Redis, from ``STATE_URL``).

redis-py's asyncio client owns the protocol, the connection pool and reconnecting: a command
after Redis came back simply opens a new connection. What this module adds is the bounds: a
short connect and socket timeout, a small bounded retry with backoff, and a bounded pool, so that
a dead or hung Redis costs a request at most ``deadline`` (2 s) and never an unbounded queue. Every key
the product writes is under ``NAMESPACE`` and carries a TTL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

log = structlog.get_logger("aegis.state")

#: Every key the product writes starts with this (one Redis may serve other applications).
NAMESPACE = "aegis:"

T = TypeVar("T")


class StateUnavailable(Exception):
    """The shared store cannot be reached: decisions that need it fail closed."""

    #: Seconds a client is asked to wait (``Retry-After``) before trying again.
    retry_after = 5


class StateStore:
    def __init__(self, url: str, *, timeout: float = 1.0, max_connections: int = 64) -> None:
        self.redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
            max_connections=max_connections,
            health_check_interval=30,
        )
        self.available: bool | None = None  # unknown until the first command
        #: A request waits at most this long for Redis before it is refused (503).
        self.deadline = 2 * timeout

    def key(self, *parts: str) -> str:
        return NAMESPACE + ":".join(parts)

    def mark(self, available: bool) -> None:
        """Log transitions only: a dead Redis must not flood the log with one line a request."""
        if available != self.available:
            if available:
                log.info("state_store_available")
            else:
                log.error("state_store_unavailable")
        self.available = available

    async def call(self, command: Awaitable[T], timeout: float | None = None) -> T:
        """Run one command (or script) within ``deadline`` (or ``timeout``) seconds in all,
        retries included; ``StateUnavailable`` when Redis cannot be reached, is too slow, or
        refuses (full)."""
        try:
            result = await asyncio.wait_for(command, timeout or self.deadline)
        except (RedisError, OSError, asyncio.TimeoutError):
            self.mark(False)
            raise StateUnavailable() from None
        self.mark(True)
        return result

    async def ping(self, timeout: float = 1.0) -> bool:
        """Whether Redis answers within ``timeout`` (no retries: /health must answer well
        inside a container health check's own timeout)."""
        try:
            await asyncio.wait_for(self.redis.ping(), timeout)
        except (RedisError, OSError, asyncio.TimeoutError):
            self.mark(False)
            return False
        self.mark(True)
        return True

    async def close(self) -> None:
        await self.redis.aclose()
