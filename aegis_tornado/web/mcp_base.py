"""What every MCP route shares beyond the base handler: origin and host checks, audited tool
calls, and calls that are cancelled when the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..mcp.jsonrpc import INVALID_REQUEST, encode, error_response
from ..mcp.protocol import McpServer
from .base import ApiError, BaseHandler
from .sse import EventStream

T = TypeVar("T")

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

    @property
    def mcp(self) -> McpServer:
        return self.ctx.mcp

    async def prepare(self) -> None:
        await super().prepare()
        if self._finished:
            return
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

    def rpc_error(self, status: int, message: str) -> ApiError:
        """An HTTP error whose body is a JSON-RPC error without id, as MCP transports answer."""
        return ApiError(status, message, body=error_response(None, INVALID_REQUEST, message))

    def bad_request(self, message: str) -> ApiError:
        return self.rpc_error(400, message)

    def forbidden(self, message: str) -> ApiError:
        return self.rpc_error(403, message)

    # --- tool calls ------------------------------------------------------------------------

    def tool_observer(self):
        """The audit hook for tool calls made by this request."""
        audit, caller, client_ip, transport = (
            self.ctx.audit,
            self.caller,
            self.client_ip,
            self.transport,
        )

        def observe(*, tool: str, status: str, duration_ms: float, reason: str | None = None):
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
            if self.request.connection.stream is None or self.request.connection.stream.closed():
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
        super().on_connection_close()

    def accepts_event_stream(self) -> bool:
        return "text/event-stream" in self.request.headers.get("Accept", "").lower()

    def write_json(self, value: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(encode(value))
