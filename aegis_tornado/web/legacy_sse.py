"""Legacy HTTP+SSE transport (MCP 2024-11-05) at /mcp/sse.

GET opens the event stream and names, in an ``endpoint`` event, the URL to POST messages to:
``/mcp/sse?session_id=...`` (plus the caller's own ``api_key`` when the stream was opened with
one, for clients that cannot send headers). POSTs answer 202 at once; replies, progress and log
messages go out on the stream as ``message`` events. Closing the stream ends the session and
cancels its calls.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from urllib.parse import quote

from ..mcp import versions
from ..mcp.jsonrpc import INVALID_REQUEST, JsonRpcError, error_response, parse_body
from ..state.relay import SseRelay
from ..state.store import StateUnavailable
from .base import ApiError
from .fairness import BUSY
from .mcp_base import McpHandler
from .sessions import LegacySession
from .sse import EventStream

_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


class LegacySseHandler(McpHandler):
    transport = "sse"
    query_key_allowed = True

    async def get(self) -> None:
        """GET /mcp/sse: the session's event stream."""
        share = await self.take_stream_share()  # across replicas (STATE_URL), else None
        registry = self.ctx.legacy_sessions
        session = registry.open(self.caller.key_id)
        if session is None:
            if share is not None:
                share.release()
            raise self.no_room_for_stream()
        stream = self.open_event_stream()
        session.stream = stream
        if not self.ctx.requests.streams.add(stream, self.caller.key_id, share):
            registry.close(session.id)
            raise self.no_room_for_stream()
        relay = self.ctx.sse_relay
        try:
            if relay is not None:
                await self._hold_elsewhere(relay, session)
            await stream.send_event(self._endpoint_url(session), event="endpoint")
            await self._pump(session, stream)
        finally:
            self.ctx.requests.streams.discard(stream)
            registry.close(session.id)
            if relay is not None:
                await relay.release(session.id)
        if not stream.closed:
            self.finish()

    async def post(self) -> None:
        """POST /mcp/sse?session_id=...: one JSON-RPC message (or a batch, under 2025-03-26)."""
        session_id = self.get_query_argument("session_id", None)
        if not session_id:
            raise self.bad_request("Missing session_id query parameter")
        if not _SESSION_ID.match(session_id):
            raise self.bad_request("Malformed session_id")
        session = self.ctx.legacy_sessions.get(session_id, self.caller.key_id)
        if session is None and self.ctx.sse_relay is not None:
            if await self._relay_elsewhere(session_id):
                return
        if session is None:
            # Also for a session opened with another key: its existence is not revealed. A
            # JSON-RPC body, so a client shows the reason instead of failing to parse.
            message = "Session not found; open a new stream with GET /mcp/sse"
            raise ApiError(
                404, message, body=error_response(_request_id(self.body), -32001, message)
            )
        if session.busy:
            raise ApiError(
                429,
                f"{session.max_pending} messages of this session are still in "
                "progress; wait for their replies",
                headers={"Retry-After": "1"},
            )
        self.require_json_content_type()
        try:
            parsed = parse_body(self.body)
        except JsonRpcError as error:
            raise ApiError(400, error.message, body=error.response()) from None
        if self.ctx.shared_calls is None:
            self._accept(session, parsed)
        else:
            items, busy = await self.admit_shared_tool_calls(parsed.items)
            self._start(session, parsed, items, busy)
        self.set_status(202)
        self.set_header("Content-Type", "text/plain; charset=utf-8")  # not Tornado's text/html
        self.finish("Accepted")

    # --- helpers ---------------------------------------------------------------------------

    def _accept(self, session: LegacySession, parsed) -> None:
        """Start handling a posted message; its replies go out on the session's stream."""
        items, busy = self.admit_tool_calls(parsed.items)
        self._start(session, parsed, items, busy)

    def _start(self, session: LegacySession, parsed, items, busy) -> None:
        if busy:
            parsed = parsed.__class__(items=items, is_batch=True)
        release = self.release_tool_calls()  # held until the calls are done, not the POST
        task = asyncio.ensure_future(
            self._process(session, parsed, self.tool_observer(), busy, release)
        )
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)

    # --- across replicas (STATE_URL): docs/SCALING.md --------------------------------------

    async def _hold_elsewhere(self, relay: SseRelay, session: LegacySession) -> None:
        """Messages posted for this session to another replica come here, and are handled by
        this (the stream's) request, in its context: its caller, key scope and log fields."""
        context = contextvars.copy_context()

        def deliver(body: bytes) -> None:
            context.run(self._accept_relayed, session, body)

        try:
            await relay.hold(session.id, self.caller.key_id, deliver)
        except StateUnavailable:
            pass  # the session still works on this replica; POSTs elsewhere get 404

    def _accept_relayed(self, session: LegacySession, body: bytes) -> None:
        if self.ctx.legacy_sessions.get(session.id, self.caller.key_id) is not session:
            return  # ended meanwhile
        try:
            parsed = parse_body(body)  # already checked by the replica that took the POST
        except JsonRpcError:
            return
        # The POST was answered 202 by another replica: a refusal goes out on the stream.
        if session.busy:
            message = f"{session.max_pending} messages of this session are still in progress"
            self._refuse_on_stream(session, parsed, message)
            return
        if self.ctx.shared_calls is not None:
            task = asyncio.ensure_future(self._accept_relayed_shared(session, parsed))
            session.tasks.add(task)
            task.add_done_callback(session.tasks.discard)
            return
        try:
            self._accept(session, parsed)
        except ApiError as refusal:  # no free tool-call slot for this key, or server busy
            self._refuse_on_stream(session, parsed, refusal.message)

    async def _accept_relayed_shared(self, session: LegacySession, parsed) -> None:
        """``_accept`` for a relayed message when the slots are counted in Redis."""
        try:
            items, busy = await self.admit_shared_tool_calls(parsed.items)
        except ApiError as refusal:  # no free slot, server busy, or Redis unavailable
            self._refuse_on_stream(session, parsed, refusal.message)
            return
        if self.ctx.legacy_sessions.get(session.id, self.caller.key_id) is not session:
            self.release_tool_calls()()  # the stream ended meanwhile
            return
        self._start(session, parsed, items, busy)

    def _refuse_on_stream(self, session: LegacySession, parsed, message: str) -> None:
        for item in parsed.items:
            if isinstance(item, JsonRpcError) or getattr(item, "id", None) is None:
                continue  # notifications get no reply
            try:
                session.outbox.put_nowait(error_response(item.id, BUSY, message))
            except asyncio.QueueFull:
                return  # the client is not reading: nothing more is queued for it

    async def _relay_elsewhere(self, session_id: str) -> bool:
        """True when another replica holds the session for this key and took the message."""
        relay = self.ctx.sse_relay
        assert relay is not None
        self.require_json_content_type()
        try:
            parse_body(self.body)
        except JsonRpcError as error:
            raise ApiError(400, error.message, body=error.response()) from None
        try:
            delivered = await relay.relay(session_id, self.caller.key_id, self.body)
        except StateUnavailable:
            raise ApiError(
                503,
                "Sessions are temporarily unavailable; try again shortly",
                headers={"Retry-After": "5"},
            ) from None
        if not delivered:
            return False
        self.set_status(202)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("Accepted")
        return True

    def _endpoint_url(self, session: LegacySession) -> str:
        # Path-absolute, so the client resolves it against the URL it connected to (and any
        # reverse-proxy origin); it rejects endpoints on another origin.
        url = f"{self.request.path}?session_id={session.id}"
        if self.caller.via == "query":
            # Hand the caller's own key back, so a client that cannot send headers can POST.
            url += "&api_key=" + quote(self.get_query_argument("api_key"), safe="")
        return url

    async def _pump(self, session: LegacySession, stream: EventStream) -> None:
        keepalive = self.ctx.settings.sse_keepalive
        ended = asyncio.ensure_future(stream.ended.wait())
        try:
            while not stream.closed and not stream.ended.is_set():
                getter = asyncio.ensure_future(session.outbox.get())
                done, _ = await asyncio.wait(
                    {getter, ended}, timeout=keepalive, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    await stream.send(getter.result())
                    continue
                getter.cancel()
                if not done:
                    await stream.keepalive()
            if stream.drain:
                await self._deliver_remaining(session, stream)
        finally:
            ended.cancel()

    async def _deliver_remaining(self, session: LegacySession, stream: EventStream) -> None:
        """Shutdown: the calls already accepted finish and their replies go out (the server's
        SHUTDOWN_TIMEOUT bounds the wait), then the stream ends."""
        gone = asyncio.ensure_future(stream.gone.wait())
        try:
            while not stream.closed and (session.tasks or not session.outbox.empty()):
                getter = asyncio.ensure_future(session.outbox.get())
                done, _ = await asyncio.wait(
                    {getter, gone, *session.tasks}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    await stream.send(getter.result())
                else:
                    getter.cancel()
        finally:
            gone.cancel()

    async def _process(self, session: LegacySession, parsed, observer, busy, release) -> None:
        mcp = self.mcp
        try:
            if parsed.is_batch:
                refusal = versions.batch_refusal(session.version)
                if refusal:
                    await session.send(error_response(None, INVALID_REQUEST, refusal))
                    return
                replies = await mcp.handle_batch(parsed.items, session, session, observer)
                replies = self.bound_batch([*replies, *busy])
                if replies:
                    await session.send(replies)
                return
            reply = await mcp.handle(parsed.items[0], session, session, observer)
            if reply is not None:
                await session.send(reply)
        except asyncio.CancelledError:
            pass  # the stream closed: nobody is listening
        finally:
            release()


def _request_id(body: bytes):
    """The id of a single request in ``body``, when it can be read (for error replies)."""
    try:
        parsed = parse_body(body)
    except JsonRpcError as error:
        return error.request_id
    first = parsed.items[0]
    return None if parsed.is_batch or isinstance(first, JsonRpcError) else first.id


default_handlers = [(r"/mcp/sse/?", LegacySseHandler)]
