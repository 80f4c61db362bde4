"""MCP sessions for Streamable HTTP: unforgeable ids, bound to the key that opened them.

An id is ``<issued>.<random>.<mac>``, the MAC being an HMAC over the issue time, the random part
and the identity of the caller's key. So an id cannot be forged, and an id presented with another
key fails verification exactly like a forged one. Because ids verify themselves, a session that
is no longer in memory (evicted, or the server restarted) is recreated from the id instead of
failing: hosted clients often cannot recover from a 404. Only ids that were ended (DELETE),
expired or fail verification are refused.

Sessions are never used for authentication: every request carries its own key.

Across replicas (``STATE_URL``) a session is its signed id, valid on every replica; what a
replica keeps is a cache of the sessions it has seen, bounded per replica like the process's
memory (``MAX_SESSIONS``, and ``MAX_SESSIONS_PER_KEY`` evicting the key's own least recently
used). Sessions are not counted in Redis: eviction never refuses (an evicted id is rebuilt on
its next request), so a shared count could refuse nothing a hosted client would survive, and
keeping it would cost a Redis round trip per request. What a session holds open, its
``GET /mcp`` stream, is counted across replicas with every other event stream of its key
(``McpHandler.take_stream_share``). An ended id (DELETE) is ended on every replica
(``state/session_ends.py``): a marker in Redis, read before any rebuild (``find``), and a message
that makes every replica caching the session drop it at once (``end_everywhere``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..mcp import versions
from ..mcp.protocol import ProtocolSession
from ..state.session_ends import SharedSessionEnds, digest

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+\Z")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Session(ProtocolSession):
    def __init__(self, session_id: str, key_id: str, version: str):
        super().__init__(version=version)
        self.id = session_id
        self.key_id = key_id
        self.last_seen = 0.0  # set by the store, on its clock
        #: The open GET stream for messages not tied to a request, if any: the transport's
        #: EventStream, typed loosely because the protocol core must not import the web layer.
        self.stream: Any = None


class SessionStore:
    def __init__(
        self,
        secret: bytes,
        ttl: float,
        max_sessions: int,
        clock: Callable[[], float] = time.time,
        max_per_key: int | None = None,
        shared_ends: SharedSessionEnds | None = None,
    ):
        self._secret = secret
        self.ttl = ttl
        self.max_sessions = max_sessions
        self.max_per_key = min(max_per_key or max_sessions, max_sessions)
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        # Each key's session ids, least recently used first: eviction takes the key's own.
        self._by_key: dict[str, OrderedDict[str, None]] = {}
        # Ended ids, remembered until they would have expired anyway (bounded like sessions).
        self._ended: OrderedDict[str, float] = OrderedDict()
        self._stateless: dict[str, dict] = {}
        #: With ``STATE_URL``: ends recorded in Redis and heard from other replicas, and the
        #: cached sessions by the digest those messages name them by.
        self._shared = shared_ends
        self._by_digest: dict[str, str] = {}
        #: Ids being checked against Redis before a rebuild (digest: id, requests checking).
        self._checking: dict[str, tuple[str, int]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def _mac(self, issued: str, nonce: str, key_id: str) -> str:
        message = f"{issued}.{nonce}.{key_id}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest()[:18])

    def create(self, key_id: str, version: str) -> Session:
        issued = format(int(self._clock()), "x")
        nonce = _b64(secrets.token_bytes(18))
        session_id = f"{issued}.{nonce}.{self._mac(issued, nonce, key_id)}"
        return self._remember(Session(session_id, key_id, version))

    def resolve(
        self, session_id: str, key_id: str, version_hint: str | None = None
    ) -> Session | None:
        """The session for ``session_id`` presented with ``key_id``, or None (answer 404)."""
        session = self._sessions.get(session_id)
        now = self._clock()
        if session is not None:
            if session.key_id != key_id:
                return None
            if now - session.last_seen > self.ttl:
                self.end(session_id, key_id)
                return None
            self._sessions.move_to_end(session_id)
            self._by_key[key_id].move_to_end(session_id)
            session.last_seen = now
            return session
        issued = self._verify(session_id, key_id)
        if issued is None or session_id in self._ended or now - issued > self.ttl:
            return None
        # Validly signed but unknown here: rebuild it. The version is whatever the client
        # says it negotiated, else the spec's default for HTTP.
        version = (
            version_hint
            if version_hint and versions.is_supported(version_hint)
            else (versions.HTTP_DEFAULT)
        )
        return self._remember(Session(session_id, key_id, version))

    async def find(
        self, session_id: str, key_id: str, version_hint: str | None = None
    ) -> Session | None:
        """``resolve``, and with ``STATE_URL`` an id that is not cached here is rebuilt only if
        no replica ended it (one Redis read per rebuild; a cached session costs none: its end
        reaches this replica as a message). ``StateUnavailable`` when that cannot be checked."""
        if self._shared is None or session_id in self._sessions:
            return self.resolve(session_id, key_id, version_hint)
        issued = self._verify(session_id, key_id)
        if issued is None or session_id in self._ended or self._clock() - issued > self.ttl:
            return None
        # An end published while the marker is read may arrive before the answer: it is
        # noted as ended (``_ended_elsewhere``), and the resolve below refuses it.
        session_digest = digest(session_id)
        _, checking = self._checking.get(session_digest, (session_id, 0))
        self._checking[session_digest] = (session_id, checking + 1)
        try:
            ended = await self._shared.is_ended(session_id)
        finally:
            _, checking = self._checking.pop(session_digest)
            if checking > 1:
                self._checking[session_digest] = (session_id, checking - 1)
        if ended:
            self._note_ended(session_id)  # the next request with it needs no Redis read
            return None
        # Rebuilt by another request or ended here while Redis answered: resolve says which.
        return self.resolve(session_id, key_id, version_hint)

    def has_ended(self, session_id: str) -> bool:
        """Whether this replica knows ``session_id`` ended (here, or heard from another)."""
        return session_id in self._ended

    async def end_everywhere(self, session_id: str, key_id: str) -> bool:
        """``end``, on every replica with ``STATE_URL``: False (404) also when another replica
        ended it first. ``StateUnavailable`` when Redis cannot record it: nothing is ended."""
        if self._shared is None:
            return self.end(session_id, key_id)
        session = self._sessions.get(session_id)
        if session is not None and session.key_id != key_id:
            return False
        issued = self._verify(session_id, key_id)
        if issued is None or session_id in self._ended:
            return False
        # The marker lives as long as the id could still be rebuilt anywhere.
        if not await self._shared.end(session_id, issued + self.ttl - self._clock()):
            self._note_ended(session_id)
            return False
        self._note_ended(session_id)
        return True

    def _note_ended(self, session_id: str) -> None:
        """Forget ``session_id`` here (its stream ends, its calls are cancelled) and remember it
        as ended, until it would have expired anyway (bounded like sessions)."""
        if session_id in self._sessions:
            self._drop(session_id)
        self._ended[session_id] = self._clock()
        while len(self._ended) > self.max_sessions * 4:
            self._ended.popitem(last=False)

    def _ended_elsewhere(self, session_digest: str) -> None:
        """A replica (this one included) ended the session Redis names by ``session_digest``."""
        session_id = self._by_digest.get(session_digest)
        if session_id is None:
            session_id, _ = self._checking.get(session_digest, (None, 0))
        if session_id is not None:
            self._note_ended(session_id)

    async def _catch_up(self) -> None:
        """The subscription was (re)made: ends published meanwhile were missed, so read the
        markers of the sessions cached here."""
        assert self._shared is not None
        for session_id in await self._shared.ended_among(list(self._sessions)):
            self._note_ended(session_id)

    def stateless_calls(self, key_id: str) -> dict:
        """In-flight calls of sessionless requests, per key (there are only a few keys)."""
        return self._stateless.setdefault(key_id, {})

    def end(self, session_id: str, key_id: str) -> bool:
        """End a session (DELETE); False when the id is not one this key may end."""
        session = self._sessions.get(session_id)
        if session is not None and session.key_id != key_id:
            return False
        if session is None and (
            self._verify(session_id, key_id) is None or session_id in self._ended
        ):
            return False
        self._note_ended(session_id)
        return True

    def _verify(self, session_id: str, key_id: str) -> float | None:
        # Ids are visible ASCII; anything else is refused before compare_digest, which raises
        # on non-ASCII strings.
        if len(session_id) > 128 or not _VISIBLE_ASCII.match(session_id):
            return None
        parts = session_id.split(".")
        if len(parts) != 3:
            return None
        issued, nonce, mac = parts
        if not hmac.compare_digest(mac, self._mac(issued, nonce, key_id)):
            return None
        try:
            return float(int(issued, 16))
        except ValueError:
            return None

    def _remember(self, session: Session) -> Session:
        """Keep ``session``, making room by evicting the same key's least recently used one.

        Another key's session is never pushed out (only one that has expired anyway): when the
        store is full of other keys' sessions, this one is served without being kept, and is
        rebuilt from its id on its next request. Evicted, not ended: an evicted id stays valid.
        """
        now = self._clock()
        session.last_seen = now
        own = self._by_key.get(session.key_id, OrderedDict())
        if len(own) >= self.max_per_key:
            self._drop(next(iter(own)))
        elif len(self._sessions) >= self.max_sessions:
            oldest_id, oldest = next(iter(self._sessions.items()))
            if now - oldest.last_seen > self.ttl:
                self._drop(oldest_id)
            elif own:
                self._drop(next(iter(own)))
            else:
                return session
        self._sessions[session.id] = session
        self._by_key.setdefault(session.key_id, own)[session.id] = None
        if self._shared is not None:
            # Before anything is cached, hear of ends (and catch up once subscribed).
            self._shared.follow(self._ended_elsewhere, self._catch_up)
            self._by_digest[digest(session.id)] = session.id
        return session

    def _drop(self, session_id: str) -> None:
        session = self._sessions.pop(session_id)
        own = self._by_key[session.key_id]
        del own[session_id]
        if not own:
            del self._by_key[session.key_id]
        if self._shared is not None:
            self._by_digest.pop(digest(session_id), None)
        session.cancel_all()
        if session.stream is not None:
            session.stream.end()


class LegacySession(ProtocolSession):
    """A legacy HTTP+SSE session: lives exactly as long as its event stream."""

    def __init__(self, session_id: str, key_id: str, outbox_size: int = 256, max_pending: int = 64):
        super().__init__(version="2024-11-05")
        self.id = session_id
        self.key_id = key_id
        self.outbox: asyncio.Queue = asyncio.Queue(maxsize=outbox_size)
        self.tasks: set[asyncio.Task] = set()
        #: Messages posted whose processing has not finished: each POST is answered 202 at
        #: once, so without a bound a client could queue unlimited work on one session.
        self.max_pending = max_pending
        self.stream = None

    @property
    def busy(self) -> bool:
        """As many messages in progress as the session takes: refuse more for now."""
        return len(self.tasks) >= self.max_pending

    async def send(self, message: dict | list[dict]) -> None:
        """``Outbound``: everything for this client goes out on its one stream, in order."""
        await self.outbox.put(message)

    def close(self) -> None:
        self.cancel_all()
        for task in list(self.tasks):
            task.cancel()
        if self.stream is not None:
            self.stream.end()


class LegacySessionRegistry:
    """Open legacy sessions, at most ``max_sessions`` in all and ``max_per_key`` per key.

    Room for a new session is made by closing the same key's oldest; another key's session is
    never closed for it. When the registry is full of other keys' sessions, ``open`` refuses.
    """

    def __init__(self, max_sessions: int, max_per_key: int | None = None):
        self.max_sessions = max_sessions
        self.max_per_key = min(max_per_key or max_sessions, max_sessions)
        self._sessions: OrderedDict[str, LegacySession] = OrderedDict()
        self._by_key: dict[str, OrderedDict[str, None]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, key_id: str) -> LegacySession | None:
        """A new session for ``key_id``, or None when there is no room for this key."""
        own = self._by_key.get(key_id)
        if own and (len(own) >= self.max_per_key or len(self._sessions) >= self.max_sessions):
            self.close(next(iter(own)))
        elif len(self._sessions) >= self.max_sessions:
            return None
        session = LegacySession(secrets.token_hex(16), key_id)
        self._sessions[session.id] = session
        self._by_key.setdefault(key_id, OrderedDict())[session.id] = None
        return session

    def get(self, session_id: str, key_id: str) -> LegacySession | None:
        """The session, if it exists and was opened with the same key (else None: 404)."""
        session = self._sessions.get(session_id)
        if session is None or not hmac.compare_digest(session.key_id, key_id):
            return None
        return session

    def close(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            own = self._by_key[session.key_id]
            del own[session_id]
            if not own:
                del self._by_key[session.key_id]
            session.close()
