"""McpServer, the protocol core, driven directly: messages in, replies and notifications out.

No HTTP here: the transports' tests cover the wire. These pin what the core itself decides
(version negotiation, errors, tool results, progress, logging, cancellation), so a transport
change cannot hide a protocol regression.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from aegis_tornado.mcp import versions
from aegis_tornado.mcp.jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    Message,
    parse_body,
)
from aegis_tornado.mcp.protocol import Discard, McpServer, ProtocolSession, ServerInfo

from ..support import CANCELLED, STARTED, demo_tools

INFO = ServerInfo(name="aegis-test", title="Aegis Test", version="9.9", instructions="Be brief.")


class Collect:
    """An Outbound that keeps what the core sends before the reply."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def methods(self) -> list[str]:
        return [m["method"] for m in self.messages]


class Observer:
    """The tool-call observer (the audit log's source): records every call it is told of."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **fields: Any) -> None:
        self.calls.append(fields)


@pytest.fixture
def server() -> McpServer:
    return McpServer(demo_tools(), INFO)


def request(method: str, params: dict | None = None, request_id: Any = 1) -> Message:
    return Message(kind="request", method=method, id=request_id, params=params or {})


def note(method: str, params: dict | None = None) -> Message:
    return Message(kind="notification", method=method, params=params or {})


def call(name: Any, arguments: Any = None, request_id: Any = 1, token: Any = None) -> Message:
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return request("tools/call", params, request_id)


async def handle(server: McpServer, message: Message, session=None, outbound=None, observer=None):
    return await server.handle(
        message, session or ProtocolSession(), outbound or Discard(), observer or Observer()
    )


# --------------------------------------------------------------------------- lifecycle


@pytest.mark.gen_test
async def test_initialize_echoes_a_supported_version_and_describes_the_server(server):
    session = ProtocolSession()
    reply = await handle(
        server,
        request(
            "initialize",
            {"protocolVersion": "2025-06-18", "clientInfo": {"name": "x" * 300, "version": "1"}},
            request_id="init",
        ),
        session,
    )
    assert reply["id"] == "init" and reply["jsonrpc"] == "2.0"
    result = reply["result"]
    assert result["protocolVersion"] == "2025-06-18" == session.version
    assert result["serverInfo"] == {"name": "aegis-test", "version": "9.9", "title": "Aegis Test"}
    assert result["capabilities"] == {"tools": {"listChanged": False}, "logging": {}}
    assert result["instructions"] == "Be brief."
    assert session.client_name == "x" * 100  # bounded: it ends up in logs
    assert not session.initialized  # until notifications/initialized


@pytest.mark.gen_test
@pytest.mark.parametrize("requested", ["1999-01-01", None, 20250618, ""])
async def test_initialize_answers_the_latest_version_for_anything_else(server, requested):
    session = ProtocolSession()
    reply = await handle(server, request("initialize", {"protocolVersion": requested}), session)
    assert reply["result"]["protocolVersion"] == versions.LATEST == session.version


@pytest.mark.gen_test
async def test_old_versions_get_no_title_in_server_info(server):
    reply = await handle(server, request("initialize", {"protocolVersion": "2024-11-05"}))
    assert "title" not in reply["result"]["serverInfo"]


@pytest.mark.gen_test
async def test_notifications_and_responses_get_no_reply(server):
    session = ProtocolSession()
    assert await handle(server, note("notifications/initialized"), session) is None
    assert session.initialized
    assert await handle(server, note("notifications/whatever"), session) is None
    assert await handle(server, Message(kind="response", id=7), session) is None


@pytest.mark.gen_test
async def test_ping_and_unknown_methods(server):
    assert await handle(server, request("ping", request_id=42)) == {
        "jsonrpc": "2.0",
        "id": 42,
        "result": {},
    }
    reply = await handle(server, request("resources/list" + "x" * 500))
    assert reply["error"]["code"] == METHOD_NOT_FOUND
    assert len(reply["error"]["message"]) < 150  # the method name is cut, not echoed whole


# --------------------------------------------------------------------------- tools/list


@pytest.mark.gen_test
async def test_tools_list_follows_the_session_version(server):
    new = await handle(server, request("tools/list"), ProtocolSession(version="2025-06-18"))
    old = await handle(server, request("tools/list"), ProtocolSession(version="2024-11-05"))
    names = [tool["name"] for tool in new["result"]["tools"]]
    assert names == ["echo", "slow", "fail", "denied", "crash"]
    assert new["result"]["tools"][0]["title"] == "Echo"
    assert new["result"]["tools"][0]["annotations"]["readOnlyHint"] is True
    assert "title" not in old["result"]["tools"][0]
    assert "annotations" not in old["result"]["tools"][0]


@pytest.mark.gen_test
async def test_tools_list_refuses_a_cursor_it_never_issued(server):
    reply = await handle(server, request("tools/list", {"cursor": "page-2"}))
    assert reply["error"] == {"code": INVALID_PARAMS, "message": "Invalid cursor"}


# --------------------------------------------------------------------------- tools/call


@pytest.mark.gen_test
async def test_a_successful_call_returns_text_and_structured_content(server):
    observer = Observer()
    session = ProtocolSession(version="2025-06-18")
    reply = await handle(server, call("echo", {"text": "héllo"}), session, observer=observer)
    result = reply["result"]
    assert json.loads(result["content"][0]["text"]) == {"text": "héllo"}
    assert result["structuredContent"] == {"text": "héllo"}
    assert "isError" not in result
    [seen] = observer.calls
    assert seen["tool"] == "echo" and seen["status"] == "success" and seen["reason"] is None
    assert seen["duration_ms"] >= 0


@pytest.mark.gen_test
async def test_versions_before_structured_output_get_text_only(server):
    session = ProtocolSession(version="2025-03-26")
    reply = await handle(server, call("echo", {"text": "a"}), session)
    assert "structuredContent" not in reply["result"]
    assert json.loads(reply["result"]["content"][0]["text"]) == {"text": "a"}


@pytest.mark.gen_test
async def test_unknown_tool_and_malformed_params_are_protocol_errors(server):
    observer = Observer()
    unknown = await handle(server, call("nope" * 100), observer=observer)
    assert unknown["error"]["code"] == INVALID_PARAMS
    assert unknown["error"]["message"].startswith("Unknown tool: nope")
    assert len(unknown["error"]["message"]) <= len("Unknown tool: ") + 128
    no_name = await handle(server, call(7), observer=observer)
    assert no_name["error"]["message"] == "Invalid params: name must be a string"
    not_object = await handle(server, call("echo", ["a"]), observer=observer)
    assert not_object["error"]["message"] == "Invalid params: arguments must be an object"
    assert [c["reason"] for c in observer.calls] == [
        "unknown_tool",
        "malformed_params",
        "malformed_arguments",
    ]
    assert {c["status"] for c in observer.calls} == {"error"}


@pytest.mark.gen_test
async def test_invalid_arguments_are_a_tool_error_the_model_can_read(server):
    observer = Observer()
    reply = await handle(server, call("echo", {"text": 5}), observer=observer)
    result = reply["result"]
    assert result["isError"] is True
    assert (
        result["content"][0]["text"]
        == "Invalid arguments for echo: argument 'text' must be a string"
    )
    assert observer.calls[0]["reason"] == "invalid_arguments"


@pytest.mark.gen_test
async def test_failed_denied_and_crashed_tools(server):
    observer = Observer()
    failed = await handle(server, call("fail", {"why": "testing"}), observer=observer)
    denied = await handle(server, call("denied", {}), observer=observer)
    crashed = await handle(server, call("crash", {}), observer=observer)
    assert failed["result"] == {
        "content": [{"type": "text", "text": "It failed as asked: testing"}],
        "isError": True,
    }
    assert denied["result"]["content"][0]["text"] == "Blocked by policy: this file is sensitive"
    crash_text = crashed["result"]["content"][0]["text"]
    assert crashed["result"]["isError"] is True
    assert "internal error" in crash_text and "/etc/shadow" not in crash_text  # no bug details
    assert [(c["status"], c["reason"]) for c in observer.calls] == [
        ("error", "asked"),
        ("denied", "sensitive_path"),
        ("error", "internal_error"),
    ]


# --------------------------------------------------------------------------- progress and logs


@pytest.mark.gen_test
async def test_progress_goes_to_the_outbound_strictly_increasing(server):
    outbound = Collect()
    session = ProtocolSession(version="2025-06-18")
    arguments = {"seconds": 0, "steps": 3, "label": "p"}
    reply = await handle(server, call("slow", arguments, token="tok"), session, outbound)
    assert reply["result"]["structuredContent"] == {"done": "p"}
    progress = [m["params"] for m in outbound.messages]
    assert [p["progress"] for p in progress] == [0, 1, 2, 3]
    assert {p["progressToken"] for p in progress} == {"tok"}
    assert progress[0]["message"] == "slow started" and progress[1]["total"] == 3
    assert outbound.methods() == ["notifications/progress"] * 4  # no log: level never set


@pytest.mark.gen_test
async def test_no_progress_without_a_token_and_no_message_in_old_versions(server):
    quiet = Collect()
    await handle(server, call("slow", {"seconds": 0, "steps": 2}), ProtocolSession(), quiet)
    assert quiet.messages == []
    old = Collect()
    session = ProtocolSession(version="2024-11-05")
    await handle(server, call("slow", {"seconds": 0, "steps": 1}, token=5), session, old)
    assert old.messages and all("message" not in m["params"] for m in old.messages)


@pytest.mark.gen_test
async def test_log_messages_follow_the_level_the_client_set(server):
    session = ProtocolSession(version="2025-06-18")
    bad = await handle(server, request("logging/setLevel", {"level": "loud"}), session)
    assert bad["error"]["code"] == INVALID_PARAMS and session.log_level is None
    ok = await handle(server, request("logging/setLevel", {"level": "info"}), session)
    assert ok["result"] == {} and session.log_level == "info"
    outbound = Collect()
    await handle(server, call("slow", {"seconds": 0, "steps": 2}), session, outbound)
    logs = [m["params"] for m in outbound.messages if m["method"] == "notifications/message"]
    assert logs == [
        {"level": "info", "logger": "slow", "data": {"step": 1}},
        {"level": "info", "logger": "slow", "data": {"step": 2}},
    ]
    await handle(server, request("logging/setLevel", {"level": "error"}), session)
    silent = Collect()
    await handle(server, call("slow", {"seconds": 0, "steps": 2}), session, silent)
    assert silent.messages == []


# --------------------------------------------------------------------------- cancellation


@pytest.mark.gen_test
async def test_cancelled_call_gets_no_reply_and_the_tool_is_stopped(server):
    session = ProtocolSession()
    observer = Observer()
    label = "cancel-me-direct"
    running = asyncio.ensure_future(
        handle(
            server,
            call("slow", {"seconds": 30, "steps": 30, "label": label}, request_id="c1"),
            session,
            observer=observer,
        )
    )
    for _ in range(200):
        if label in STARTED:
            break
        await asyncio.sleep(0.01)
    assert "c1" in session.in_flight
    # An id that is not running is ignored; a boolean id is no id at all.
    await handle(server, note("notifications/cancelled", {"requestId": True}), session)
    await handle(server, note("notifications/cancelled", {"requestId": "other"}), session)
    assert not running.done()
    await handle(server, note("notifications/cancelled", {"requestId": "c1"}), session)
    assert await asyncio.wait_for(running, 5) is None
    assert label in CANCELLED
    assert session.in_flight == {}
    assert observer.calls[-1]["reason"] == "cancelled"


# --------------------------------------------------------------------------- batches


@pytest.mark.gen_test
async def test_a_batch_answers_each_request_and_each_bad_element(server):
    session = ProtocolSession(version="2025-03-26")
    parsed = parse_body(
        json.dumps(
            [
                {"jsonrpc": "2.0", "id": 1, "method": "ping"},
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "1.0", "id": 2, "method": "ping"},
                {"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {}},
                {
                    "jsonrpc": "2.0",
                    "id": 4,
                    "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": "b"}},
                },
            ]
        )
    )
    replies = await server.handle_batch(parsed.items, session, Discard(), Observer())
    by_id = {reply["id"]: reply for reply in replies}
    assert set(by_id) == {1, 2, 3, 4}  # the notification got no reply
    assert by_id[1]["result"] == {}
    assert by_id[2]["error"]["code"] == INVALID_REQUEST
    assert by_id[3]["error"]["message"] == "initialize must not be sent in a batch"
    assert json.loads(by_id[4]["result"]["content"][0]["text"]) == {"text": "b"}
    assert session.initialized


def test_support_records_start_empty_in_every_test():
    # The cancellation test above leaves its label behind; the autouse fixture in conftest.py
    # clears support.py's records, so no test can pass on another one's leftovers.
    assert STARTED == [] and CANCELLED == []
