"""Every tool's arguments, fuzzed from the tool's own input schema, through every transport.

Arguments are mostly valid, often of the wrong type, at and past their bounds, hostile strings
(traversal, NUL, huge), missing required ones, unknown extras. Every call ends in a
CallToolResult, valid or ``isError``, never a protocol error, never an unexplained internal
error; and each call leaves exactly one ``tool_call`` audit line.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given

from .checks import assert_no_leak, assert_tool_result
from .conftest import FUZZ, fuzz_registry
from .strategies import any_tool_call

REGISTRY = fuzz_registry()
#: Test tools whose whole point is an internal error.
EXPECTED_TO_CRASH = {"crash"}

_ids = itertools.count(1)
CALLS: list[str] = []


def call_over(live_server, transport: str, name: str, arguments) -> dict:
    if transport == "rest":
        reply = live_server.request(
            "POST",
            "/mcp/tool/call",
            json.dumps({"tool": name, "arguments": arguments}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert_no_leak(reply.body)
        if reply.status == 400:  # the body itself was refused (a lone surrogate, say)
            assert "Request body is not valid JSON" in reply.json()["message"]
            return {}
        assert reply.status == 200, (reply.status, reply.body[:300])
        return reply.json()
    request_id = next(_ids)
    reply = live_server.request(
        "POST",
        "/mcp",
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments},
            }
        ).encode(),
        headers={"Content-Type": "application/json", "MCP-Protocol-Version": "2025-06-18"},
    )
    assert_no_leak(reply.body)
    if reply.status == 400:
        assert reply.json()["error"]["code"] == -32700
        return {}
    assert reply.status == 200, (reply.status, reply.body[:300])
    message = reply.json()
    assert message["id"] == request_id and "result" in message, message
    return message["result"]


@pytest.mark.parametrize("transport", ["mcp", "rest"])
@FUZZ
@given(call=any_tool_call(REGISTRY))
def test_every_tool_answers_any_arguments_with_a_result(live_server, transport, call):
    name, arguments = call
    result = call_over(live_server, transport, name, arguments)
    if not result:
        return
    CALLS.append(name)
    assert_tool_result(result)
    text = result["content"][0]["text"]
    if name not in EXPECTED_TO_CRASH:
        assert "internal error" not in text, (name, arguments, text)
    if result.get("isError") and text.startswith("Invalid arguments"):
        assert text.startswith(f"Invalid arguments for {name}: "), text


def test_each_call_has_one_audit_line_and_none_was_an_unexplained_crash(live_server):
    assert live_server.drained()
    records = [json.loads(line) for line in live_server.audit_text().splitlines()]
    calls = [r for r in records if r["event"] == "tool_call"]
    assert sorted(r["tool"] for r in calls) == sorted(CALLS)
    crashes = {r["tool"] for r in calls if r.get("reason") == "internal_error"}
    assert crashes <= EXPECTED_TO_CRASH, crashes
