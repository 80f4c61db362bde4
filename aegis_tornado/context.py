"""Everything a request handler needs, built once at start-up and shared through the app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .audit import AuditLog
from .auth.client_ip import ClientIpResolver
from .auth.keys import KeyRing
from .auth.limiter import FailedAuthLimiter
from .auth.scopes import OAuthScopes
from .metrics import Metrics
from .settings import Settings
from .state.call_slots import SharedCallSlots
from .state.leases import Lease, SharedLeases
from .state.limiter import SharedFailedAuthLimiter
from .state.relay import SseRelay
from .state.store import StateStore
from .web.fairness import CallSlots


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
    #: Scopes of OAuth callers (OAUTH_SCOPES), built by assembly and replaced on SIGHUP.
    oauth_scopes: OAuthScopes = field(default_factory=OAuthScopes)
    requests: RequestTracker = field(default_factory=lambda: RequestTracker())
    metrics: Metrics = field(default_factory=Metrics)
    #: Tool calls in progress per key (``MAX_CALLS_PER_KEY``).
    calls: CallSlots = field(default_factory=lambda: CallSlots(8))
    #: The shared store (``STATE_URL``) and the limiter kept in it; None for one replica, whose
    #: state is ``limiter`` and the rest above, in this process.
    state: StateStore | None = None
    shared_limiter: SharedFailedAuthLimiter | None = None
    #: Legacy SSE POSTs reaching this replica for a stream held by another.
    sse_relay: SseRelay | None = None
    #: Tool calls in progress per key across replicas (used instead of ``calls``).
    shared_calls: SharedCallSlots | None = None
    #: Each key's event streams across replicas (``MAX_SESSIONS_PER_KEY``), as leases held by
    #: the streams in ``requests.streams``.
    shared_streams: SharedLeases | None = None

    @classmethod
    def from_settings(cls, settings: Settings, keyring: KeyRing | None = None) -> AppContext:
        metrics = Metrics(repo_labels=settings.metrics_repo_labels)
        ctx = cls(
            settings=settings,
            keyring=keyring if keyring is not None else KeyRing(settings.api_keys),
            limiter=FailedAuthLimiter(
                settings.max_auth_failures,
                settings.auth_failure_window,
                settings.auth_tracked_ips,
                ipv6_prefix=settings.auth_ipv6_prefix,
            ),
            client_ips=ClientIpResolver(settings.trusted_proxies, settings.client_ip_header),
            audit=AuditLog(on_auth=metrics.observe_auth),
            requests=RequestTracker(
                max_streams=settings.max_sessions, per_key=settings.max_sessions_per_key
            ),
            calls=CallSlots(settings.max_calls_per_key),
            metrics=metrics,
        )
        if settings.state_url is not None:
            ctx.state = StateStore(settings.state_url)
            ctx.shared_limiter = SharedFailedAuthLimiter(
                ctx.state,
                settings.max_auth_failures,
                settings.auth_failure_window,
                ipv6_prefix=settings.auth_ipv6_prefix,
            )
            ctx.sse_relay = SseRelay(ctx.state)
            ctx.shared_calls = SharedCallSlots(
                ctx.state, settings.max_calls_per_key, settings.call_slot_lease
            )
            # Streams outlive a Redis outage: their leases are put back when it ends.
            ctx.shared_streams = SharedLeases(
                ctx.state,
                "streams",
                settings.max_sessions_per_key,
                settings.stream_lease,
                restore=True,
            )
        metrics.watch(ctx)
        return ctx


class OpenStreams:
    """Open event streams (objects with an ``end()`` method), oldest first, and whose they are.

    An authenticated client opening streams and never closing them costs a bounded number of
    connections: at most ``limit`` in all and ``per_key`` per key. Room for a new stream is made
    by ending the same key's oldest; another key's stream is never ended for it, so when the
    streams open are all other keys', ``add`` refuses.

    With ``STATE_URL`` each stream also holds its key's share across replicas (a ``Lease``),
    given back when the stream leaves this table.
    """

    def __init__(self, limit: int | None = None, per_key: int | None = None) -> None:
        self.limit = limit
        self.per_key = per_key
        self._streams: dict[Any, str] = {}
        self._by_key: dict[str, dict[Any, None]] = {}
        self._leases: dict[Any, Lease] = {}

    def add(self, stream: Any, key_id: str = "", lease: Lease | None = None) -> bool:
        """Track ``stream`` (and its ``lease``, released with it); False (not added, the
        lease released) when there is no room for this key."""
        own = self._by_key.get(key_id)
        full = self.limit is not None and len(self._streams) >= self.limit
        if own and (full or (self.per_key is not None and len(own) >= self.per_key)):
            oldest = next(iter(own))
            self.discard(oldest)
            oldest.end()
        elif full:
            if lease is not None:
                lease.release()
            return False
        self._streams[stream] = key_id
        self._by_key.setdefault(key_id, {})[stream] = None
        if lease is not None:
            self._leases[stream] = lease
        return True

    def hand_over_oldest(self, key_id: str) -> Lease | None:
        """End this key's oldest stream that holds a share across replicas, and hand that
        share (its lease) to the stream replacing it; None when there is none here."""
        for stream in self._by_key.get(key_id, {}):
            lease = self._leases.pop(stream, None)
            if lease is not None:
                self.discard(stream)
                stream.end()
                return lease.transfer()
        return None

    def discard(self, stream: Any) -> None:
        lease = self._leases.pop(stream, None)
        if lease is not None:
            lease.release()
        key_id = self._streams.pop(stream, None)
        if key_id is None:
            return
        own = self._by_key[key_id]
        own.pop(stream, None)
        if not own:
            del self._by_key[key_id]

    def __len__(self) -> int:
        return len(self._streams)

    def __iter__(self):
        return iter(list(self._streams))

    def __contains__(self, stream: Any) -> bool:
        return stream in self._streams


class RequestTracker:
    """Counts requests in progress and open event streams, for graceful shutdown."""

    def __init__(self, max_streams: int | None = None, per_key: int | None = None) -> None:
        self.in_flight = 0
        self.streams = OpenStreams(max_streams, per_key)
        #: Bytes of replies and events written but not yet taken by their clients.
        self.queued_bytes = 0
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
