"""Plain REST access to the tools, for scripts and clients that do not speak MCP.

``GET /mcp/tools`` lists the same descriptors as ``tools/list``; ``POST /mcp/tool/call`` takes
``{"tool": NAME, "arguments": {...}}`` (``name`` is accepted too) and returns the MCP
``CallToolResult``. Tool failures are 200 with ``isError: true``, like MCP; only requests that
are malformed, or name no tool, get an HTTP error.
"""

from __future__ import annotations

from ..mcp import versions
from ..mcp.jsonrpc import Message
from ..mcp.protocol import Discard, ProtocolSession, UnknownTool
from .base import ApiError
from .mcp_base import McpHandler


class ToolListHandler(McpHandler):
    transport = "rest"
    query_key_allowed = True

    def get(self) -> None:
        """GET /mcp/tools -> {"tools": [...]}."""
        self.write_json({"tools": self.mcp.registry.descriptors(versions.LATEST)})


class ToolCallHandler(McpHandler):
    transport = "rest"
    query_key_allowed = True

    async def post(self) -> None:
        """POST /mcp/tool/call {"tool": NAME, "arguments": {...}} -> CallToolResult."""
        request = self.json_body()
        if not isinstance(request, dict):
            raise ApiError(400, 'Body must be a JSON object: {"tool": NAME, "arguments": {...}}')
        name = request.get("tool", request.get("name"))
        if not isinstance(name, str) or not name:
            raise ApiError(400, '"tool" must be the name of a tool (see GET /mcp/tools)')
        arguments = request.get("arguments", {})
        if arguments is not None and not isinstance(arguments, dict):
            raise ApiError(400, '"arguments" must be a JSON object')
        session = ProtocolSession(version=versions.LATEST)
        call = [Message(kind="request", method="tools/call", id=0)]
        if self.ctx.shared_calls is None:
            self.admit_tool_calls(call)
        else:
            await self.admit_shared_tool_calls(call)
        try:
            result = await self.until_disconnect(
                self.mcp.call_tool(
                    name,
                    arguments,
                    session=session,
                    outbound=Discard(),
                    observer=self.tool_observer(),
                )
            )
        except UnknownTool:
            raise ApiError(404, f"Unknown tool: {name[:128]} (see GET /mcp/tools)") from None
        if result is not None:
            self.write_json(result)


default_handlers = [
    (r"/mcp/tools/?", ToolListHandler),
    (r"/mcp/tool/call/?", ToolCallHandler),
]
