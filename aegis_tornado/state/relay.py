"""Legacy SSE across replicas: a POST that reaches a replica without the session's stream is
published to the replica holding it (Redis pub/sub), which handles it as if posted there.

The replica opening a stream records ``aegis:sse:<session id>`` = the identity of the key that
opened it (so another replica refuses the same 404 to any other key) and subscribes to the
channel of the same name. A POST elsewhere checks the record, then publishes the body: no
subscriber (the stream just ended, or its replica died) is a 404 like an unknown session.
Records expire after ``RECORD_TTL`` even if a replica dies without deleting them.

The same subscription (one connection, one reader) also carries channels a replica follows for
its whole life (``listen``): the ended Streamable HTTP sessions (``state/session_ends.py``).
Pub/sub drops what is published while a subscriber is disconnected, so each listener is told
every time its subscription is (re)made, to catch up from what Redis keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Awaitable, Callable

import structlog
from redis.exceptions import RedisError

from .store import StateStore, StateUnavailable

log = structlog.get_logger("aegis.state")

#: Longest a stream's record outlives a replica that died holding it.
RECORD_TTL = 24 * 3600

Deliver = Callable[[bytes], None]
#: Run when a followed channel's subscription is made or made again (after an outage).
Subscribed = Callable[[], Awaitable[None]]


class SseRelay:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._pubsub = store.redis.pubsub(ignore_subscribe_messages=True)
        self._held: dict[str, Deliver] = {}
        #: Channels followed for the relay's life (``listen``), and what to run on subscribing.
        self._followed: dict[str, tuple[Deliver, Subscribed]] = {}
        #: Followed channels not known subscribed on a live connection since a gap (none yet,
        #: a failed read, or redis-py reconnecting on its own): subscribe, then catch up.
        self._behind = True
        self._reader: asyncio.Task | None = None

    def _channel(self, session_id: str) -> str:
        return self.store.key("sse", session_id)

    async def hold(self, session_id: str, key_id: str, deliver: Deliver) -> None:
        """This replica holds the stream: messages posted elsewhere come to ``deliver``."""
        channel = self._channel(session_id)
        await self.store.call(self.store.redis.set(channel, key_id, ex=RECORD_TTL))
        await self.store.call(self._pubsub.subscribe(channel))
        self._held[channel] = deliver
        self._start_reader()

    def listen(self, channel: str, deliver: Deliver, subscribed: Subscribed) -> None:
        """Follow ``channel`` from now on: each message goes to ``deliver``. Subscribing is
        done (and, after Redis was away, done again) by the reader, which then awaits
        ``subscribed`` so the listener can catch up on what was published meanwhile."""
        self._followed[channel] = (deliver, subscribed)
        self._start_reader()

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.ensure_future(self._read())

    async def release(self, session_id: str) -> None:
        channel = self._channel(session_id)
        if self._held.pop(channel, None) is None:
            return
        with contextlib.suppress(Exception):  # best effort: the record expires anyway
            await self._pubsub.unsubscribe(channel)
            await self.store.redis.delete(channel)

    async def relay(self, session_id: str, key_id: str, body: bytes) -> bool:
        """Publish ``body`` to the replica holding the session; False when none does for
        this key (the caller answers 404)."""
        channel = self._channel(session_id)
        owner = await self.store.call(self.store.redis.get(channel))
        if not isinstance(owner, bytes) or not hmac.compare_digest(owner, key_id.encode()):
            return False
        return bool(await self.store.call(self.store.redis.publish(channel, body)))

    async def _follow(self) -> None:
        """(Re)subscribe the followed channels, then let each listener catch up."""
        followed = list(self._followed.items())
        await asyncio.wait_for(
            self._pubsub.subscribe(*(channel for channel, _ in followed)), self.store.deadline
        )
        self._behind = False  # a reconnection from now on (even during the catch-up) counts
        connection = self._pubsub.connection
        if connection is not None:  # kept weakly; registering again is a no-op
            connection.register_connect_callback(self._reconnected)
        self.store.mark(True)
        for _, (_, subscribed) in followed:
            await subscribed()

    def _reconnected(self, _connection: object) -> None:
        """redis-py made the subscription's connection again (and resubscribed, after its own
        callback): what was published while it was down is lost, so catch up."""
        self._behind = True

    async def _read(self) -> None:
        while self._held or self._followed:
            try:
                if self._followed and self._behind:
                    await self._follow()
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, asyncio.TimeoutError, StateUnavailable):
                # Redis gone: retried, one log line per outage.
                self.store.mark(False)
                self._behind = True
                await asyncio.sleep(1.0)
                continue
            except Exception:  # never a dead reader: every relayed session depends on it
                log.exception("sse_relay_read_failed")
                await asyncio.sleep(1.0)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode()
            deliver = self._held.get(channel) or self._followed.get(channel, (None,))[0]
            if deliver is not None:
                try:
                    deliver(message["data"])
                except Exception:  # one bad message must not stop every relayed session
                    log.exception("sse_relay_delivery_failed")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
