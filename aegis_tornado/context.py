"""Everything a request handler needs, built once at start-up and shared through the app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .audit import AuditLog
from .auth.client_ip import ClientIpResolver
from .auth.keys import KeyRing
from .auth.limiter import FailedAuthLimiter
from .settings import Settings


@dataclass
class AppContext:
    settings: Settings
    keyring: KeyRing
    limiter: FailedAuthLimiter
    client_ips: ClientIpResolver
    audit: AuditLog
    #: The MCP core and its session stores; set by assembly (``aegis_tornado.assembly``).
    mcp: Any = None
    sessions: Any = None
    legacy_sessions: Any = None
    #: The OAuth service (``aegis_tornado.oauth.OAuthService``); None while OAuth is off.
    oauth: Any = None
    requests: RequestTracker = field(default_factory=lambda: RequestTracker())

    @classmethod
    def from_settings(cls, settings: Settings, keyring: KeyRing | None = None) -> AppContext:
        return cls(
            settings=settings,
            keyring=keyring if keyring is not None else KeyRing(settings.api_keys),
            limiter=FailedAuthLimiter(
                settings.max_auth_failures, settings.auth_failure_window, settings.auth_tracked_ips
            ),
            client_ips=ClientIpResolver(settings.trusted_proxies),
            audit=AuditLog(),
            requests=RequestTracker(max_streams=settings.max_sessions),
        )


class OpenStreams:
    """Open event streams (objects with an ``end()`` method), oldest first.

    Beyond ``limit`` the oldest is asked to end: an authenticated client opening streams and
    never closing them costs a bounded number of connections, as sessions do.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._streams: dict[Any, None] = {}

    def add(self, stream: Any) -> None:
        self._streams[stream] = None
        while self.limit is not None and len(self._streams) > self.limit:
            oldest = next(iter(self._streams))
            del self._streams[oldest]
            oldest.end()

    def discard(self, stream: Any) -> None:
        self._streams.pop(stream, None)

    def __len__(self) -> int:
        return len(self._streams)

    def __iter__(self):
        return iter(list(self._streams))

    def __contains__(self, stream: Any) -> bool:
        return stream in self._streams


class RequestTracker:
    """Counts requests in progress and open event streams, for graceful shutdown."""

    def __init__(self, max_streams: int | None = None) -> None:
        self.in_flight = 0
        self.streams = OpenStreams(max_streams)
        self.shutting_down = False
        self._idle = asyncio.Event()
        self._idle.set()

    def started(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def finished(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """True when every request finished within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False
