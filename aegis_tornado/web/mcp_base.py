"""What every MCP route shares beyond the base handler: origin and host checks, audited tool
calls, and calls that are cancelled when the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog
from tornado.ioloop import IOLoop

from ..mcp.jsonrpc import INVALID_REQUEST, encode_bytes, error_response
from ..mcp.protocol import McpServer
from ..state.leases import Lease
from ..state.store import StateUnavailable
from .base import ApiError, BaseHandler
from .fairness import BUSY, bound_batch, busy_reply, tool_calls
from .sse import EventStream

T = TypeVar("T")
log = structlog.get_logger("aegis.http")


def _nothing() -> None:
    return None


LOCAL_HOSTNAMES = ("localhost", "127.0.0.1", "::1")
#: Hosted MCP clients whose browser-originated requests carry a credential (OAuth or key).
HOSTED_CLIENT_ORIGINS = ("https://chatgpt.com", "https://claude.ai", "https://claude.com")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_and_port(netloc: str, scheme: str) -> tuple[str, int | None]:
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError:
        return "", None
    return (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


class McpHandler(BaseHandler):
    transport = "unknown"  # audit label: streamable_http, sse, rest

    def initialize(self) -> None:
        super().initialize()
        self._work: asyncio.Future | None = None
        self._event_stream: EventStream | None = None
        self._release_calls: Callable[[], None] = _nothing

    @property
    def mcp(self) -> McpServer:
        return self.ctx.mcp

    def check_request(self) -> None:
        self._check_host()
        self._check_origin()

    # --- browser-facing protections --------------------------------------------------------

    def _check_host(self) -> None:
        """DNS rebinding: an unauthenticated server on localhost answers only to local names."""
        settings = self.ctx.settings
        if settings.auth_enabled or not settings.listens_on_localhost:
            return
        hostname, _ = _host_and_port(self.request.host or "", self.request.protocol)
        if hostname not in LOCAL_HOSTNAMES:
            raise self.forbidden("Host not allowed: this server only answers to localhost")

    def _check_origin(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin is None:
            return  # not a browser: scripts and hosted clients (ChatGPT's backend) send none
        settings = self.ctx.settings
        normalised = origin.strip().rstrip("/").lower()
        if normalised in settings.allowed_origins:
            return
        if normalised in HOSTED_CLIENT_ORIGINS and self.caller.via is not None:
            return  # ChatGPT's and Claude's web apps, carrying a valid credential
        parts = urlsplit(normalised)
        if parts.scheme in _DEFAULT_PORTS:
            origin_host = _host_and_port(parts.netloc, parts.scheme)
            if origin_host == _host_and_port(self.request.host or "", parts.scheme):
                return  # same origin
            if settings.listens_on_localhost and origin_host[0] in LOCAL_HOSTNAMES:
                return
        raise self.forbidden("Origin not allowed; add it to ALLOWED_ORIGINS if it is yours")

    def no_room_for_stream(self) -> ApiError:
        message = "Too many sessions or event streams open; close one of this key's, or retry later"
        return ApiError(
            429,
            message,
            headers={"Retry-After": "5"},
            body=error_response(None, BUSY, message) if self.transport != "rest" else None,
        )

    async def take_stream_share(self) -> Lease | None:
        """With ``STATE_URL``: this key's share of event streams across replicas
        (``MAX_SESSIONS_PER_KEY``), a lease the stream holds while open; None without it.

        When every share of the key is taken, the key's oldest stream on this replica is ended
        and hands its share over (the newest wins, as in one process); when this replica holds
        none of them, 429. Redis unavailable: 503 with ``Retry-After`` (fail closed: no stream
        goes uncounted); streams already open keep running.
        """
        shared = self.ctx.shared_streams
        if shared is None:
            return None
        key_id = self.caller.key_id
        try:
            lease = await shared.take_lease(key_id)
        except StateUnavailable as unavailable:
            raise self._unavailable("Event streams", unavailable) from None
        if lease is None:
            lease = self.ctx.requests.streams.hand_over_oldest(key_id)
        if lease is None:
            raise self.no_room_for_stream()
        return lease

    # --- fair shares -----------------------------------------------------------------------

    def _refuse_if_readers_lag(self) -> None:
        """429 while too many reply bytes wait for slow clients to read them."""
        if self.ctx.requests.queued_bytes >= self.ctx.settings.max_queued_bytes:
            message = "The server is busy sending replies to clients that read slowly; retry"
            raise ApiError(429, message, headers={"Retry-After": "1"}, body=self._rpc_body(message))

    def _too_many_calls(self, per_key: int) -> ApiError:
        message = (
            f"Too many tool calls of this key in progress (at most {per_key} at once); "
            "retry shortly"
        )
        return ApiError(429, message, headers={"Retry-After": "1"}, body=self._rpc_body(message))

    def _unavailable(self, what: str, unavailable: StateUnavailable) -> ApiError:
        """503 + ``Retry-After`` when the shared store cannot count ``what`` (fail closed)."""
        message = f"{what} are temporarily unavailable; retry shortly"
        return ApiError(
            503,
            message,
            headers={"Retry-After": str(unavailable.retry_after)},
            body=self._rpc_body(message),
        )

    def admit_tool_calls(self, items: list[Any]) -> tuple[list[Any], list[dict[str, Any]]]:
        """Take this key's tool-call slots for the calls among ``items``.

        Returns the items to run and the replies for the calls that cannot run now (a batch
        beyond the key's free slots). A request whose calls find no free slot at all is refused
        with 429; with too many reply bytes waiting for clients to read them, with 503. The
        slots are given back when the request finishes, or with ``release_tool_calls``.
        """
        calls = tool_calls(items)
        if not calls:
            return items, []
        ctx = self.ctx
        self._refuse_if_readers_lag()
        free = ctx.calls.free(self.caller.key_id)
        if free <= 0:
            raise self._too_many_calls(ctx.calls.per_key)
        over = {id(m) for m in calls[free:]}
        self._release_calls = ctx.calls.take(self.caller.key_id, len(calls) - len(over))
        if not over:
            return items, []
        kept = [m for m in items if id(m) not in over]
        return kept, [busy_reply(m, ctx.calls.per_key) for m in calls[free:]]

    async def admit_shared_tool_calls(
        self, items: list[Any]
    ) -> tuple[list[Any], list[dict[str, Any]]]:
        """``admit_tool_calls`` with the slots counted across replicas in Redis
        (``STATE_URL``); Redis unavailable: 503 with ``Retry-After`` (fail closed)."""
        shared = self.ctx.shared_calls
        assert shared is not None
        calls = tool_calls(items)
        if not calls:
            return items, []
        self._refuse_if_readers_lag()
        try:
            taken, release = await shared.take(self.caller.key_id, len(calls))
        except StateUnavailable as unavailable:
            raise self._unavailable("Tool calls", unavailable) from None
        if taken <= 0:
            raise self._too_many_calls(shared.per_key)
        self._release_calls = release
        if self.client_gone():
            self._release_calls()  # the connection closed while the slots were being taken
        if taken == len(calls):
            return items, []
        over = {id(m) for m in calls[taken:]}
        kept = [m for m in items if id(m) not in over]
        return kept, [busy_reply(m, shared.per_key) for m in calls[taken:]]

    def release_tool_calls(self) -> Callable[[], None]:
        """Hand the slots' release to work that outlives the request (legacy SSE)."""
        release, self._release_calls = self._release_calls, _nothing
        return release

    def bound_batch(self, replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return bound_batch(replies, self.ctx.settings.max_batch_result_bytes)

    def _rpc_body(self, message: str) -> dict[str, Any] | None:
        return error_response(None, BUSY, message) if self.transport != "rest" else None

    def on_finish(self) -> None:
        self._release_calls()
        super().on_finish()

    def rpc_error(self, status: int, message: str, request_id: Any = None) -> ApiError:
        """An HTTP error whose body is a JSON-RPC error, as MCP transports answer: with the
        request's id when it could be read (MCP requires the echo), else null."""
        return ApiError(status, message, body=error_response(request_id, INVALID_REQUEST, message))

    def bad_request(self, message: str) -> ApiError:
        return self.rpc_error(400, message)

    def forbidden(self, message: str) -> ApiError:
        return self.rpc_error(403, message)

    # --- tool calls ------------------------------------------------------------------------

    def tool_observer(self):
        """The audit hook for tool calls made by this request."""
        audit, metrics, caller, client_ip, transport = (
            self.ctx.audit,
            self.ctx.metrics,
            self.caller,
            self.client_ip,
            self.transport,
        )

        def observe(*, tool: str, status: str, duration_ms: float, reason: str | None = None):
            metrics.observe_tool_call(
                tool=tool, status=status, duration_ms=duration_ms, reason=reason
            )
            audit.tool_call(
                tool=tool,
                transport=transport,
                status=status,
                duration_ms=duration_ms,
                key_hint=caller.key_hint,
                client_ip=client_ip,
                reason=reason,
                gitea_user=caller.gitea_user,
            )

        return observe

    async def until_disconnect(self, work: Awaitable[T]) -> T | None:
        """Run ``work``; if the client disconnects first, cancel it and return None."""
        self._work = asyncio.ensure_future(work)
        try:
            return await self._work
        except asyncio.CancelledError:
            if self.client_gone():
                return None
            raise
        finally:
            self._work = None

    def open_event_stream(self) -> EventStream:
        """Answer with an event stream; it is marked closed the moment the client goes away."""
        stream = EventStream(self)
        stream.open()
        self._event_stream = stream
        return stream

    def on_connection_close(self) -> None:
        # Free what the request holds now, not at the next keepalive (up to SSE_KEEPALIVE away).
        if self._event_stream is not None:
            self._event_stream.mark_closed()
        if self._work is not None and not self._work.done():
            self._work.cancel()
        self._release_calls()
        super().on_connection_close()

    def accepts_event_stream(self) -> bool:
        return "text/event-stream" in self.request.headers.get("Accept", "").lower()

    def write_json(self, value: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        data = encode_bytes(value)
        self.deliver(self.finish(data), len(data))

    def deliver(self, written: Awaitable[None], size: int) -> None:
        """Count ``size`` bytes as queued for the client until ``written`` completes, and drop
        the connection if the client has not read them within ``HTTP_SEND_TIMEOUT``: a client
        that does not read must not hold memory."""
        tracker = self.ctx.requests
        tracker.queued_bytes += size
        loop = IOLoop.current()
        timer = loop.call_later(self.ctx.settings.http_send_timeout, self._drop_slow_reader)

        def delivered(_: Any) -> None:
            tracker.queued_bytes -= size
            loop.remove_timeout(timer)

        asyncio.ensure_future(written).add_done_callback(delivered)

    def _drop_slow_reader(self) -> None:
        stream = getattr(self.request.connection, "stream", None)
        if stream is not None and not stream.closed():
            log.info("client_not_reading", transport=self.transport)
            stream.close()
