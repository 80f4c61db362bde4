"""The MCP server core: lifecycle, tools, progress, cancellation and logging, in both eras.

Handshake era (2024-11-05 … 2025-11-25): transports hand ``handle`` parsed messages together
with the session they belong to. Stateless era (2026-07-28): transports ``admit`` a request
(the envelope checks of ``stateless``), then ``handle_stateless`` runs it with a session that
lives as long as the request. Either way an ``Outbound`` carries messages related to the request
(progress, log) to the client before the reply, and the reply is returned, or None where
JSON-RPC wants none (notifications, cancelled calls).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import structlog

from . import stateless, versions
from .arguments import ArgumentError, validate_arguments
from .jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    JsonRpcError,
    Message,
    error_response,
    notification,
    result_response,
)
from .registry import ToolError, ToolRegistry

log = structlog.get_logger("aegis.mcp")

#: RFC 5424 severities, least severe first, as MCP's logging uses them.
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


class Outbound(Protocol):
    """Where messages related to the request being handled go (an SSE stream, or nowhere)."""

    async def send(self, message: dict[str, Any]) -> None: ...


class Discard:
    """For plain JSON replies: there is no channel for anything but the reply itself."""

    async def send(self, message: dict[str, Any]) -> None:
        return None


#: Called once per tool call: tool, status ("success", "error", "denied"), duration_ms, reason.
CallObserver = Callable[..., None]


@dataclass
class ProtocolSession:
    """What the protocol remembers between messages of one client."""

    version: str = versions.HTTP_DEFAULT
    log_level: str | None = None  # None: the client never asked for log messages
    initialized: bool = False
    client_name: str | None = None
    in_flight: dict[Any, asyncio.Task] = field(default_factory=dict)

    def cancel(self, request_id: Any) -> bool:
        task = self.in_flight.get(request_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def cancel_all(self) -> None:
        for task in list(self.in_flight.values()):
            task.cancel()

    def wants_log(self, level: str) -> bool:
        return self.log_level is not None and LOG_LEVELS.index(level) >= LOG_LEVELS.index(
            self.log_level
        )


class _CallContext:
    """The ToolContext handed to a running tool."""

    def __init__(
        self, session: ProtocolSession, outbound: Outbound, progress_token: Any, tool_name: str
    ):
        self._session = session
        self._outbound = outbound
        self._token = progress_token
        self._progress = -1  # the first notification says 0: the call has started
        self.tool_name = tool_name

    @property
    def wants_progress(self) -> bool:
        return self._token is not None

    async def progress(self, message: str | None = None, total: float | None = None) -> None:
        if self._token is None:
            return
        self._progress += 1  # strictly increasing, as the spec requires
        params: dict[str, Any] = {"progressToken": self._token, "progress": self._progress}
        if total is not None:
            params["total"] = total
        if message and versions.has_progress_message(self._session.version):
            params["message"] = message
        await self._outbound.send(notification("notifications/progress", params))

    async def log(self, level: str, data: Any) -> None:
        if level in LOG_LEVELS and self._session.wants_log(level):
            await self._outbound.send(
                notification(
                    "notifications/message",
                    {"level": level, "logger": self.tool_name, "data": data},
                )
            )


#: Seconds between "still running" progress notifications of a call that asked for progress.
PROGRESS_INTERVAL = 2.0


async def _with_heartbeat(
    work: Awaitable[dict[str, Any]], context: _CallContext, name: str
) -> dict[str, Any]:
    """Run a tool; while it runs, tell a client that asked for progress that it still does
    (clients may extend their timeout on progress, and a user sees the call is alive)."""
    if not context.wants_progress:
        return await work
    task = asyncio.ensure_future(work)
    started = time.monotonic()
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=PROGRESS_INTERVAL)
            if done:
                return task.result()
            elapsed = time.monotonic() - started
            await context.progress(f"{name} still running ({elapsed:.0f} s)")
    finally:
        if not task.done():
            task.cancel()


def tool_result(value: dict[str, Any], version: str) -> dict[str, Any]:
    """A successful CallToolResult: the JSON as text, plus ``structuredContent`` where known."""
    result: dict[str, Any] = {"content": [{"type": "text", "text": json_text(value)}]}
    if versions.has_structured_output(version):
        result["structuredContent"] = value
    return result


def json_text(value: Any) -> str:
    """``value`` as compact JSON text (orjson; what it refuses, such as a lone surrogate, takes
    ``json``, and the reply's encoding repairs it)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def error_result(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}


@dataclass(frozen=True)
class ServerInfo:
    name: str
    title: str
    version: str
    instructions: str


@dataclass(frozen=True)
class Admitted:
    """A stateless-era request that passed the envelope checks, ready to run."""

    message: Message
    envelope: stateless.Envelope

    @property
    def wants_log(self) -> bool:
        return self.envelope.log_level in LOG_LEVELS


#: Caching hints (2026-07-28): how long a client may reuse a result, in milliseconds.
DISCOVER_TTL_MS = 3_600_000
TOOLS_LIST_TTL_MS = 300_000

Method = Callable[..., Awaitable[dict[str, Any]]]


class McpServer:
    def __init__(self, registry: ToolRegistry, info: ServerInfo, *, caller_scoped_tools=False):
        self.registry = registry
        self.info = info
        #: The tool list depends on who asks (per-key scopes): caches must not share it.
        self.tools_cache_scope = "private" if caller_scoped_tools else "public"
        #: Capabilities added with their methods (resources, completions).
        self.extra_capabilities: dict[str, Any] = {}
        shared: dict[str, Method] = {
            "tools/list": self._tools_list,
            "tools/call": self._tools_call,
        }
        self._methods: dict[str, Method] = {
            "initialize": self._initialize,
            "ping": self._ping,
            "logging/setLevel": self._set_level,
            **shared,
        }
        self._stateless_methods: dict[str, Method] = {
            "server/discover": self._discover,
            **shared,
        }

    def add_methods(self, capability: str, methods: dict[str, Method]) -> None:
        """Serve more methods in both eras, advertised under ``capability``."""
        self._methods.update(methods)
        self._stateless_methods.update(methods)
        self.extra_capabilities[capability] = {}

    # --- entry points ----------------------------------------------------------------------

    async def handle(
        self, message: Message, session: ProtocolSession, outbound: Outbound, observer: CallObserver
    ) -> dict[str, Any] | None:
        """The reply to one message, or None (notification, response, cancelled call)."""
        if message.kind == "notification":
            self._notify(message, session)
            return None
        if message.kind == "response":
            return None  # we send no requests to clients, so there is nothing to match
        handler = self._methods.get(message.method or "")
        if handler is None:
            return error_response(
                message.id, METHOD_NOT_FOUND, f"Method not found: {str(message.method)[:100]}"
            )
        return await self._run(handler, message, session, outbound, observer)

    def admit(self, message: Message, routing: stateless.Routing | None) -> Admitted:
        """The stateless-era checks, in order; raises ``stateless.Rejection``. ``routing`` is
        None for a transport that carries nothing beside the body."""
        envelope = stateless.read_envelope(message)
        if routing is not None:
            stateless.check_routing(message, envelope, routing)
        stateless.check_version(message, envelope)
        stateless.check_method(message, self._stateless_methods)
        return Admitted(message, envelope)

    async def handle_stateless(
        self, admitted: Admitted, outbound: Outbound, observer: CallObserver
    ) -> dict[str, Any] | None:
        """Run an admitted request: everything it needs is in the request itself."""
        message, envelope = admitted.message, admitted.envelope
        level = envelope.log_level
        if level is not None and level not in LOG_LEVELS:
            return error_response(
                message.id,
                INVALID_PARAMS,
                f"Invalid params: _meta {stateless.LOG_LEVEL} must be one of "
                f"{', '.join(LOG_LEVELS)}",
            )
        session = ProtocolSession(
            version=envelope.version,
            log_level=level,
            initialized=True,
            client_name=envelope.client_name,
        )
        handler = self._stateless_methods[message.method or ""]
        reply = await self._run(handler, message, session, outbound, observer)
        if reply is not None and "result" in reply:
            reply["result"] = self._complete(reply["result"])
        return reply

    def _complete(self, result: dict[str, Any]) -> dict[str, Any]:
        """Every stateless-era result says it is complete and who answered it."""
        meta = dict(result.get("_meta") or {})
        meta[stateless.SERVER_INFO] = self._server_info(versions.LATEST_MODERN)
        return {"resultType": "complete", **result, "_meta": meta}

    def _server_info(self, version: str) -> dict[str, Any]:
        server_info: dict[str, Any] = {"name": self.info.name, "version": self.info.version}
        if versions.has_structured_output(version):
            server_info["title"] = self.info.title
        return server_info

    async def _run(
        self,
        handler: Method,
        message: Message,
        session: ProtocolSession,
        outbound: Outbound,
        observer: CallObserver,
    ) -> dict[str, Any] | None:
        try:
            return result_response(message.id, await handler(message, session, outbound, observer))
        except JsonRpcError as error:
            return error_response(message.id, error.code, error.message, error.data)
        except _Cancelled:
            return None
        except Exception:  # noqa: BLE001 - a bug must not reach the client as a traceback
            log.exception("mcp_internal_error", method=message.method)
            return error_response(message.id, INTERNAL_ERROR, "Internal error")

    async def handle_batch(
        self,
        items: list[Message | JsonRpcError],
        session: ProtocolSession,
        outbound: Outbound,
        observer: CallObserver,
    ) -> list[dict[str, Any]]:
        async def one(item: Message | JsonRpcError) -> dict[str, Any] | None:
            if isinstance(item, JsonRpcError):
                return item.response()
            if item.method == "initialize":
                return error_response(
                    item.id, INVALID_REQUEST, "initialize must not be sent in a batch"
                )
            return await self.handle(item, session, outbound, observer)

        replies = await asyncio.gather(*(one(item) for item in items))
        return [reply for reply in replies if reply is not None]

    async def call_tool(
        self,
        name: str,
        arguments: Any,
        *,
        session: ProtocolSession,
        outbound: Outbound,
        observer: CallObserver,
        progress_token: Any = None,
    ) -> dict[str, Any]:
        """Run a tool and return its CallToolResult. Unknown tool: JsonRpcError -32602."""
        tool = self.registry.get(name)
        if tool is None:
            observer(tool=name[:128], status="error", duration_ms=0.0, reason="unknown_tool")
            raise UnknownTool(name)
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            observer(tool=name, status="error", duration_ms=0.0, reason="malformed_arguments")
            raise JsonRpcError(INVALID_PARAMS, "Invalid params: arguments must be an object")
        started = time.monotonic()
        status, reason = "success", None
        try:
            try:
                checked = validate_arguments(arguments, tool.input_schema)
            except ArgumentError as error:
                status, reason = "error", "invalid_arguments"
                return error_result(f"Invalid arguments for {name}: {error}")
            context = _CallContext(session, outbound, progress_token, name)
            await context.progress(f"{name} started")
            value = await _with_heartbeat(tool.handler(checked, context), context, name)
            return tool_result(value, session.version)
        except ToolError as error:
            status, reason = error.audit_status, error.reason
            return error_result(error.message)
        except asyncio.CancelledError:
            status, reason = "error", "cancelled"
            raise
        except Exception:  # noqa: BLE001
            status, reason = "error", "internal_error"
            log.exception("tool_failed", tool=name)
            return error_result(f"{name} failed because of an internal error; it has been logged.")
        finally:
            observer(
                tool=name,
                status=status,
                duration_ms=1000 * (time.monotonic() - started),
                reason=reason,
            )

    # --- methods ---------------------------------------------------------------------------

    async def _initialize(self, message: Message, session: ProtocolSession, *_: Any) -> dict:
        params = message.params
        session.version = versions.negotiate(params.get("protocolVersion"))
        client_info = params.get("clientInfo")
        if isinstance(client_info, dict) and isinstance(client_info.get("name"), str):
            session.client_name = client_info["name"][:100]
        return {
            "protocolVersion": session.version,
            "capabilities": self.capabilities(),
            "serverInfo": self._server_info(session.version),
            "instructions": self.info.instructions,
        }

    def capabilities(self) -> dict[str, Any]:
        capabilities: dict[str, Any] = {"tools": {"listChanged": False}, "logging": {}}
        capabilities.update(self.extra_capabilities)
        return capabilities

    async def _discover(self, *_: Any) -> dict:
        return {
            "supportedVersions": list(versions.ADVERTISED),
            "capabilities": self.capabilities(),
            "instructions": self.info.instructions,
            "ttlMs": DISCOVER_TTL_MS,
            "cacheScope": "public",
        }

    async def _ping(self, *_: Any) -> dict:
        return {}

    async def _tools_list(self, message: Message, session: ProtocolSession, *_: Any) -> dict:
        if message.params.get("cursor") is not None:
            # Everything fits on one page, so no cursor we could have issued exists.
            raise JsonRpcError(INVALID_PARAMS, "Invalid cursor")
        result: dict[str, Any] = {"tools": self.registry.descriptors(session.version)}
        if versions.has_result_type(session.version):
            result.update(ttlMs=TOOLS_LIST_TTL_MS, cacheScope=self.tools_cache_scope)
        return result

    async def _set_level(self, message: Message, session: ProtocolSession, *_: Any) -> dict:
        level = message.params.get("level")
        if level not in LOG_LEVELS:
            raise JsonRpcError(INVALID_PARAMS, f"level must be one of {', '.join(LOG_LEVELS)}")
        session.log_level = level
        return {}

    async def _tools_call(
        self, message: Message, session: ProtocolSession, outbound: Outbound, observer: CallObserver
    ) -> dict:
        params = message.params
        name = params.get("name")
        if not isinstance(name, str):
            observer(tool="?", status="error", duration_ms=0.0, reason="malformed_params")
            raise JsonRpcError(INVALID_PARAMS, "Invalid params: name must be a string")
        meta = params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        if isinstance(token, bool) or not isinstance(token, (str, int)):
            token = None
        # Run as a task registered under the request id, so notifications/cancelled (which
        # arrives on another HTTP request) can stop it.
        task = asyncio.ensure_future(
            self.call_tool(
                name,
                params.get("arguments"),
                session=session,
                outbound=outbound,
                observer=observer,
                progress_token=token,
            )
        )
        key = message.id
        session.in_flight[key] = task
        try:
            await asyncio.wait({task})
        finally:
            if session.in_flight.get(key) is task:
                del session.in_flight[key]
            if not task.done():  # we were cancelled ourselves (the client went away)
                task.cancel()
        if task.cancelled():
            raise _Cancelled()
        return task.result()

    # --- notifications ---------------------------------------------------------------------

    def _notify(self, message: Message, session: ProtocolSession) -> None:
        if message.method == "notifications/initialized":
            session.initialized = True
        elif message.method == "notifications/cancelled":
            request_id = message.params.get("requestId")
            if isinstance(request_id, (str, int)) and not isinstance(request_id, bool):
                session.cancel(request_id)
        # Any other notification is ignored, as the spec asks.


class UnknownTool(JsonRpcError):
    def __init__(self, name: str):
        super().__init__(INVALID_PARAMS, f"Unknown tool: {name[:128]}")


class _Cancelled(Exception):
    """The call was cancelled by the client: no reply is sent."""
