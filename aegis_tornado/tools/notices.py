"""Log lines a tool call sends the client when something it should know happened: Gitea did
not answer and the call is being retried (it will take longer), or the result was cut to size.

Sent through the call's ``ToolContext.log``, so only to a client that asked for them: under
2025 revisions after ``logging/setLevel``, under 2026-07-28 when the request's ``_meta`` names a
``logLevel`` (the protocol core decides). The result itself says the same in ``truncated_note``;
the log line reaches a user watching the client's log too.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ..gitea.client import retry_listener
from ..mcp.registry import Tool, ToolContext, ToolRegistry


def _with_notices(tool: Tool) -> Tool:
    handler = tool.handler

    async def run(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        pending: set[asyncio.Task] = set()

        def on_retry(endpoint: str, attempt: int, delay: float) -> None:
            message = (
                f"{tool.name}: Gitea did not answer ({endpoint}, attempt {attempt}); "
                f"retrying in {delay:.1f} s"
            )
            task = asyncio.ensure_future(context.log("warning", {"message": message}))
            pending.add(task)
            task.add_done_callback(pending.discard)

        token = retry_listener.set(on_retry)
        try:
            result = await handler(arguments, context)
        finally:
            retry_listener.reset(token)
        if pending:  # the log lines go out before the result
            await asyncio.wait(pending)
        if isinstance(result, dict) and result.get("truncated") is True:
            await context.log(
                "notice",
                {
                    "message": f"{tool.name}: the result was cut to stay within the size limit",
                    "note": result.get("truncated_note"),
                },
            )
        return result

    return dataclasses.replace(tool, handler=run)


def with_notices(registry: ToolRegistry) -> ToolRegistry:
    return ToolRegistry([_with_notices(tool) for tool in registry])
