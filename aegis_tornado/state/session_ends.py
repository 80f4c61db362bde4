"""Streamable HTTP sessions ended (``DELETE /mcp``) on every replica, through Redis.

A session is its signed id, valid on any replica until ``SESSION_TTL`` after it was issued. When
a client ends one, the replica it reaches records ``aegis:session-ended:<digest>`` (the SHA-256
of the id, never the id), expiring when the id would have expired anyway, and publishes the
digest on the channel ``aegis:session-ended``, both in one script: of two replicas ending the
same id at once, one does (204) and the other learns it was already ended (404).

- A replica holding the session in its cache drops it when the digest reaches it (its
  ``GET /mcp`` stream ends, its calls are cancelled) and remembers the id as ended.
- A replica that would rebuild the session from its id (not in its cache) reads the marker
  first: one ``GET`` per rebuild, none per request for a cached session.
- Pub/sub drops what is published while a subscriber is away (Redis restarted, the connection
  lost): each time the subscription is made again, the replica reads the markers of every
  session in its cache (``MGET``, in chunks) and drops those ended meanwhile.

Redis unavailable: ``StateUnavailable``; the handler answers 503 with ``Retry-After`` (a rebuild
it cannot check, a ``DELETE`` it cannot record everywhere) rather than serve an ended session.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable, Iterable

from .relay import SseRelay
from .store import StateStore

#: Markers read per ``MGET`` when catching up (a replica caches at most ``MAX_SESSIONS``).
CHUNK = 500

# KEYS[1] = the marker; ARGV: its TTL in seconds, the channel, the digest. 1: ended by this
# call; 0: it already was (by another replica, or an earlier DELETE).
_END = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
"""


def digest(session_id: str) -> str:
    """What Redis knows a session by: the hex SHA-256 of its id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


class SharedSessionEnds:
    def __init__(self, store: StateStore, relay: SseRelay) -> None:
        self.store = store
        self.relay = relay
        self.channel = store.key("session-ended")
        self._end = store.redis.register_script(_END)
        self._following = False

    def _marker(self, session_digest: str) -> str:
        return self.store.key("session-ended", session_digest)

    def follow(
        self, ended: Callable[[str], None], caught_up: Callable[[], Awaitable[None]]
    ) -> None:
        """From now on, ``ended(digest)`` for every session ended on any replica, and
        ``caught_up()`` whenever the subscription is (re)made. Idempotent."""
        if self._following:
            return
        self._following = True
        self.relay.listen(
            self.channel, lambda data: ended(data.decode("ascii", "replace")), caught_up
        )

    async def end(self, session_id: str, valid_for: float) -> bool:
        """Record ``session_id`` as ended for ``valid_for`` seconds (at least 1) and tell every
        replica; False when it already was ended. ``StateUnavailable`` when Redis is away."""
        session_digest = digest(session_id)
        ttl = max(1, math.ceil(valid_for))
        done = await self.store.call(
            self._end(keys=[self._marker(session_digest)], args=[ttl, self.channel, session_digest])
        )
        return bool(done)

    async def is_ended(self, session_id: str) -> bool:
        """Whether a replica ended ``session_id`` (``StateUnavailable`` when Redis is away)."""
        marker = await self.store.call(self.store.redis.get(self._marker(digest(session_id))))
        return marker is not None

    async def ended_among(self, session_ids: Iterable[str]) -> list[str]:
        """Those of ``session_ids`` a replica ended."""
        ids = list(session_ids)
        ended: list[str] = []
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            markers = [self._marker(digest(session_id)) for session_id in chunk]
            values = await self.store.call(self.store.redis.mget(markers))
            ended.extend(sid for sid, value in zip(chunk, values, strict=True) if value is not None)
        return ended
