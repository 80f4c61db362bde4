"""Streamable HTTP transport at /mcp: both eras on one endpoint.

A POST whose body carries a 2026-07-28 ``_meta`` version, or whose ``MCP-Protocol-Version`` is
not a handshake-era one, is served statelessly (``_post_stateless``): the routing headers are
checked against the body, rejections carry a JSON-RPC error body with the request's id and
status 400 or 404, and no session is read or issued. Everything else keeps the 2025 behaviour:
sessions are offered but not required (a POST without ``Mcp-Session-Id`` is served statelessly,
because hosted clients such as ChatGPT and Claude.ai drop the header between requests).

The reply to a request is plain JSON, unless it is a tool call that may emit progress or log
messages first and the client accepts an event stream: then the reply goes out as SSE.
"""

from __future__ import annotations

from typing import Any

from ..mcp import stateless, versions
from ..mcp.jsonrpc import JsonRpcError, Message, ParsedBody, error_response, parse_body
from ..mcp.protocol import Admitted, Discard, ProtocolSession
from ..state.store import StateUnavailable
from .base import ApiError
from .fairness import BUSY
from .mcp_base import McpHandler
from .sessions import Session

SESSION_HEADER = "Mcp-Session-Id"
VERSION_HEADER = "MCP-Protocol-Version"
METHOD_HEADER = "Mcp-Method"
NAME_HEADER = "Mcp-Name"

#: HTTP status of each stateless-era rejection (2026-07-28 transport rules).
_REJECTION_STATUS = {
    "malformed": 400,
    "mismatch": 400,
    "unsupported": 400,
    "capability": 400,
    "not_found": 404,
}


class StreamableHttpHandler(McpHandler):
    transport = "streamable_http"

    # --- request context -------------------------------------------------------------------

    def _version_header(self) -> str | None:
        version = self.request.headers.get(VERSION_HEADER)
        return None if version is None else version.strip()

    def _refuse_stateless_stream(self) -> None:
        """GET and DELETE do not exist in the stateless era (no stream, no session)."""
        version = self._version_header()
        if version is not None and not versions.is_legacy(version):
            refusal = self.rpc_error(
                405, f"{self.request.method} /mcp is not part of MCP {version[:40]}; POST only"
            )
            refusal.headers["Allow"] = "POST"
            raise refusal

    async def _session(self, version_header: str | None, request_id: Any = None) -> Session | None:
        session_id = self.request.headers.get(SESSION_HEADER)
        if session_id is None:
            return None
        try:
            session = await self.ctx.sessions.find(
                session_id.strip(), self.caller.key_id, version_header
            )
        except StateUnavailable as unavailable:
            raise self._sessions_unavailable(unavailable, request_id) from None
        if session is None:
            raise self._session_not_found(request_id)
        return session

    def _session_not_found(self, request_id: Any = None) -> ApiError:
        message = "Session not found: it ended or expired; initialize a new one"
        return ApiError(404, message, body=error_response(request_id, -32001, message))

    def _sessions_unavailable(self, unavailable: StateUnavailable, request_id: Any) -> ApiError:
        """Fail closed (``STATE_URL``): whether another replica ended the session cannot be
        checked, or its end cannot be recorded for every replica; the client retries."""
        message = "Sessions are temporarily unavailable; retry shortly"
        return ApiError(
            503,
            message,
            headers={"Retry-After": str(unavailable.retry_after)},
            body=error_response(request_id, BUSY, message),
        )

    def _stateless_session(self, version_header: str | None) -> ProtocolSession:
        # One in-flight table per key, so notifications/cancelled from a sessionless client
        # still finds its call.
        in_flight = self.ctx.sessions.stateless_calls(self.caller.key_id)
        return ProtocolSession(version=version_header or versions.HTTP_DEFAULT, in_flight=in_flight)

    # --- verbs -----------------------------------------------------------------------------

    async def post(self) -> None:
        """POST /mcp: one JSON-RPC message (or a batch, under 2025-03-26)."""
        version_header = self._version_header()
        try:
            parsed = parse_body(self.body)
        except JsonRpcError as error:
            if not self.has_json_content_type():
                raise self.rpc_error(415, "Content-Type must be application/json") from None
            raise ApiError(400, error.message, body=error.response()) from None
        single = parsed.items[0] if not parsed.is_batch else None
        request_id = single.id if isinstance(single, Message) else None
        if not self.has_json_content_type():
            raise self.rpc_error(415, "Content-Type must be application/json", request_id)
        if stateless.selects_stateless(
            single if isinstance(single, Message) else None, version_header
        ):
            await self._post_stateless(parsed)
            return
        session = await self._session(version_header, request_id)

        items = parsed.items
        first = items[0]
        if (
            not parsed.is_batch
            and isinstance(first, Message)
            and first.is_request
            and first.method == "initialize"
        ):
            await self._open_session(first)
            return
        protocol_session = session or self._stateless_session(version_header)
        if parsed.is_batch and (refusal := versions.batch_refusal(protocol_session.version)):
            raise self.bad_request(refusal)
        if self.ctx.shared_calls is None:
            items, busy = self.admit_tool_calls(items)
        else:
            items, busy = await self.admit_shared_tool_calls(items)
        if busy:
            parsed = parsed.__class__(items=items, is_batch=True)
        observer = self.tool_observer()
        requests = [m for m in items if isinstance(m, Message) and m.is_request]
        if not requests and not any(isinstance(m, JsonRpcError) for m in items):
            for message in items:
                if isinstance(message, Message):
                    await self.mcp.handle(message, protocol_session, Discard(), observer)
            self.set_status(202)
            self.finish()
            return

        if self.accepts_event_stream() and any(
            self._may_emit_before_reply(m, protocol_session) for m in requests
        ):
            await self._reply_as_event_stream(parsed, protocol_session, observer, busy)
            return
        reply = await self.until_disconnect(
            self._dispatch(parsed, protocol_session, Discard(), observer, busy)
        )
        self._reply(reply)

    async def _post_stateless(self, parsed: ParsedBody) -> None:
        """The 2026-07-28 path: one self-describing request, checked in the spec's order."""
        message = parsed.items[0]
        if parsed.is_batch or not isinstance(message, Message):
            raise self.bad_request("The body must be a single JSON-RPC request or notification")
        if message.kind == "response":
            raise self.rpc_error(400, "Clients do not send responses in MCP 2026-07-28", message.id)
        if message.kind == "notification":
            # This era defines no client notifications over HTTP: accepted and ignored.
            self.set_status(202)
            self.finish()
            return
        headers = self.request.headers
        routing = stateless.Routing(
            protocol_version=headers.get(VERSION_HEADER),
            method=_stripped(headers.get(METHOD_HEADER)),
            name=headers.get(NAME_HEADER),
        )
        try:
            admitted = self.mcp.admit(message, routing)
        except stateless.Rejection as rejection:
            raise ApiError(
                _REJECTION_STATUS[rejection.kind], rejection.message, body=rejection.response()
            ) from None
        # This key's share of tool calls (429 beyond it).
        if self.ctx.shared_calls is None:
            self.admit_tool_calls([message])
        else:
            await self.admit_shared_tool_calls([message])
        observer = self.tool_observer()
        if self.accepts_event_stream() and self._stateless_may_emit(admitted):
            stream = self.open_event_stream()
            reply = await self.until_disconnect(
                self.mcp.handle_stateless(admitted, stream, observer)
            )
            if reply is not None and not stream.closed:
                await stream.send(reply)
            if not stream.closed:
                self.finish()
            return
        reply = await self.until_disconnect(
            self.mcp.handle_stateless(admitted, Discard(), observer)
        )
        self._reply(reply)

    @staticmethod
    def _stateless_may_emit(admitted: Admitted) -> bool:
        message = admitted.message
        if message.method != "tools/call":
            return False
        meta = message.params.get("_meta")
        return admitted.wants_log or (
            isinstance(meta, dict) and meta.get("progressToken") is not None
        )

    def _reply(self, reply: Any) -> None:
        if self.client_gone():
            return
        if reply is None or reply == []:
            self.set_status(202)  # a cancelled call: nothing to say
            self.finish()
            return
        self.write_json(reply)

    async def get(self) -> None:
        """GET /mcp: a held-open stream for server messages not tied to a request."""
        self._refuse_stateless_stream()
        if not self.accepts_event_stream():
            raise ApiError(406, "GET /mcp needs 'Accept: text/event-stream'")
        session = await self._session(self._version_header())
        share = await self.take_stream_share()  # across replicas (STATE_URL), else None
        if session is not None and self.ctx.sessions.has_ended(session.id):
            # Ended (DELETE here or on another replica) while the share was being taken.
            if share is not None:
                share.release()
            raise self._session_not_found()
        stream = self.open_event_stream()
        if not self.ctx.requests.streams.add(stream, self.caller.key_id, share):
            raise self.no_room_for_stream()
        if session is not None:
            if session.stream is not None:
                session.stream.end()  # one GET stream per session: the newest wins
            session.stream = stream
        try:
            await stream.keepalive()  # sends the headers now, so the client sees 200 at once
            while not stream.closed:
                if await stream.wait_ended(self.ctx.settings.sse_keepalive):
                    break
                await stream.keepalive()
        finally:
            self.ctx.requests.streams.discard(stream)
            if session is not None and session.stream is stream:
                session.stream = None
        if not stream.closed:
            self.finish()

    async def delete(self) -> None:
        """DELETE /mcp: end the session named by Mcp-Session-Id."""
        self._refuse_stateless_stream()
        session_id = self.request.headers.get(SESSION_HEADER)
        if not session_id:
            raise self.bad_request("DELETE /mcp needs the Mcp-Session-Id header")
        try:
            ended = await self.ctx.sessions.end_everywhere(session_id.strip(), self.caller.key_id)
        except StateUnavailable as unavailable:
            raise self._sessions_unavailable(unavailable, None) from None
        if not ended:
            message = "Session not found"
            raise ApiError(404, message, body=error_response(None, -32001, message))
        self.set_status(204)
        self.finish()

    # --- helpers ---------------------------------------------------------------------------

    async def _open_session(self, message: Message) -> None:
        session = self.ctx.sessions.create(self.caller.key_id, versions.HTTP_DEFAULT)
        reply = await self.mcp.handle(message, session, Discard(), self.tool_observer())
        self.set_header(SESSION_HEADER, session.id)
        self.write_json(reply)

    @staticmethod
    def _may_emit_before_reply(message: Message, session: ProtocolSession) -> bool:
        if message.method != "tools/call":
            return False
        meta = message.params.get("_meta")
        asked_progress = isinstance(meta, dict) and meta.get("progressToken") is not None
        return asked_progress or session.log_level is not None

    async def _dispatch(self, parsed, session: ProtocolSession, outbound, observer, busy=()):
        if parsed.is_batch:
            replies = await self.mcp.handle_batch(parsed.items, session, outbound, observer)
            return self.bound_batch([*replies, *busy])
        return await self.mcp.handle(parsed.items[0], session, outbound, observer)

    async def _reply_as_event_stream(
        self, parsed, session: ProtocolSession, observer, busy=()
    ) -> None:
        stream = self.open_event_stream()
        reply = await self.until_disconnect(self._dispatch(parsed, session, stream, observer, busy))
        if reply is not None and not stream.closed:
            for message in reply if isinstance(reply, list) else [reply]:
                await stream.send(message)
        # A cancelled call ends its stream without a reply, as the spec asks.
        if not stream.closed:
            self.finish()


def _stripped(value: str | None) -> str | None:
    return None if value is None else value.strip(" \t")


default_handlers = [(r"/mcp/?", StreamableHttpHandler)]
