"""Test tools for exercising the transports: the real registry, with tools that behave on demand.

Transports must not care which tools they serve, so their tests use these instead of the Gitea
tools: one that echoes, one that is slow and reports progress, one that fails, one the policy
denies, and one with a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
from typing import Any

from aegis_tornado import cli
from aegis_tornado.mcp.registry import Tool, ToolDenied, ToolError, ToolRegistry

from .sse_reader import SseReader

#: Calls of ``slow`` that were cancelled, so tests can see cancellation reach the tool.
CANCELLED: list[str] = []
STARTED: list[str] = []


async def _echo(arguments, context):
    return {"text": arguments["text"]}


async def _slow(arguments, context):
    STARTED.append(arguments["label"])
    try:
        for step in range(arguments["steps"]):
            await context.progress(f"step {step + 1}", total=arguments["steps"])
            await context.log("info", {"step": step + 1})
            await asyncio.sleep(arguments["seconds"] / max(1, arguments["steps"]))
    except asyncio.CancelledError:
        CANCELLED.append(arguments["label"])
        raise
    return {"done": arguments["label"]}


async def _fail(arguments, context):
    raise ToolError(f"It failed as asked: {arguments.get('why', 'no reason')}", reason="asked")


async def _denied(arguments, context):
    raise ToolDenied("Blocked by policy: this file is sensitive", reason="sensitive_path")


async def _crash(arguments, context):
    raise RuntimeError("bug with secret details /etc/shadow")


def demo_tools() -> ToolRegistry:
    text_schema = {
        "type": "object",
        "properties": {"text": {"type": "string", "maxLength": 1000}},
        "required": ["text"],
        "additionalProperties": False,
    }
    return ToolRegistry(
        [
            Tool("echo", "Echo", "Returns the text it is given.", text_schema, _echo),
            Tool(
                "slow",
                "Slow",
                "Sleeps, reporting progress; for cancellation tests.",
                {
                    "type": "object",
                    "properties": {
                        "seconds": {"type": "number", "minimum": 0, "maximum": 60, "default": 5},
                        "steps": {"type": "integer", "minimum": 1, "maximum": 100, "default": 3},
                        "label": {"type": "string", "default": "slow"},
                    },
                    "additionalProperties": False,
                },
                _slow,
            ),
            Tool(
                "fail",
                "Fail",
                "Always fails with an isError result.",
                {
                    "type": "object",
                    "properties": {"why": {"type": "string"}},
                    "additionalProperties": False,
                },
                _fail,
            ),
            Tool("denied", "Denied", "Always refused by policy.", {"type": "object"}, _denied),
            Tool("crash", "Crash", "Raises an unexpected exception.", {"type": "object"}, _crash),
        ]
    )


async def _not_served(*args, **kwargs) -> int:
    return 0


def start_up(*argv: str) -> tuple[int, str]:
    """``aegis-mcp ARGV`` in this process, as far as start-up goes (it serves nothing): its exit
    status and what it printed on stderr. Run it in a temporary working directory
    (``monkeypatch.chdir``): start-up reads ``./.env`` and checks the audit log's path."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = cli.main(list(argv), run=_not_served)
    return status, stderr.getvalue()


@dataclasses.dataclass
class Gitea:
    """The Gitea double serving on a port of its own, as the ``gitea`` fixtures yield it."""

    app: Any
    url: str

    @property
    def double(self):
        return self.app.double

    @property
    def faults(self):
        return self.app.faults

    @property
    def oauth(self):
        """Its OAuth2 provider (grants, token requests, revocation)."""
        return self.app.double.oauth

    def requested_paths(self) -> list[str]:
        return [record.path for record in self.double.requests]


def rpc(method: str, id_: int | str | None = 1, **params: Any) -> dict[str, Any]:
    """A JSON-RPC 2.0 message; ``id_=None`` makes it a notification."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if id_ is not None:
        message["id"] = id_
    return message


def initialize_request(client: str = "t", version: str = "2025-06-18") -> dict[str, Any]:
    """The ``initialize`` request an MCP client opens a session with."""
    info = {"name": client, "version": "1"}
    return rpc("initialize", protocolVersion=version, capabilities={}, clientInfo=info)


async def post_mcp(
    base_url: str,
    key: str,
    message: dict[str, Any],
    *,
    accept: str = "application/json, text/event-stream",
    headers: dict[str, str] | None = None,
    wait: bool = True,
) -> SseReader:
    """``message`` POSTed to ``/mcp`` with ``key``, on a connection the test controls: it reads
    the reply as it comes (an event stream when the call asked for progress) or drops it
    mid-call. ``headers`` adds to (or replaces) the usual ones; ``wait`` as ``SseReader.open``."""
    return await SseReader.open(
        base_url + "/mcp",
        method="POST",
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": accept,
            **(headers or {}),
        },
        body=json.dumps(message),
        wait=wait,
    )
