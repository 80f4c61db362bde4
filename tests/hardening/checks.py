"""What every answer to hostile input must look like, whatever the input was."""

from __future__ import annotations

from typing import Any

from .conftest import Reply, strict_json

#: Error codes the server may send. -32603 (internal error) is not among them: it means a bug.
KNOWN_ERROR_CODES = {-32700, -32600, -32601, -32602, -32001}


def assert_no_leak(body: bytes) -> None:
    for marker in (b"Traceback", b'File "/', b"aegis_tornado/", b"/etc/shadow"):
        assert marker not in body, f"the answer leaks internals: {body[:300]!r}"


def assert_tool_result(result: Any) -> None:
    """A CallToolResult: text content, with isError on failures."""
    assert isinstance(result, dict), result
    content = result.get("content")
    assert isinstance(content, list) and content, result
    for block in content:
        assert block.get("type") == "text" and isinstance(block.get("text"), str), block
    assert isinstance(result.get("isError", False), bool), result
    if "structuredContent" in result:
        assert isinstance(result["structuredContent"], dict), result


def assert_jsonrpc_message(message: Any, *, allow_notifications: bool = False) -> None:
    assert isinstance(message, dict), message
    assert message.get("jsonrpc") == "2.0", message
    if "method" in message:
        assert allow_notifications, f"a notification where only replies belong: {message}"
        assert "id" not in message and isinstance(message.get("params", {}), dict), message
        return
    assert "id" in message, message
    request_id = message["id"]
    assert request_id is None or isinstance(request_id, (str, int)), message
    assert not isinstance(request_id, bool), message
    assert ("result" in message) != ("error" in message), message
    if "error" in message:
        error = message["error"]
        assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str), error
        assert error["code"] in KNOWN_ERROR_CODES, error
    else:
        result = message["result"]
        assert isinstance(result, dict), message
        if "content" in result:
            assert_tool_result(result)


def parse_sse(body: bytes) -> list[tuple[str, str]]:
    events = []
    for block in body.decode("utf-8").split("\n\n"):
        event, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((event, "\n".join(data)))
    return events


def assert_error_body(reply: Reply) -> None:
    """An HTTP error: JSON, either {"status", "message"} or a JSON-RPC error."""
    assert reply.content_type.startswith("application/json"), reply
    body = reply.json()
    if "jsonrpc" in body:
        assert_jsonrpc_message(body)
        assert "error" in body, body
    else:
        assert body.get("status") == reply.status and isinstance(body.get("message"), str), body


def check_mcp_reply(reply: Reply) -> None:
    """The answer to any POST /mcp."""
    assert_no_leak(reply.body)
    assert reply.status in (200, 202, 400, 404, 413, 415), (reply.status, reply.body[:300])
    if reply.status == 202:
        assert reply.body == b"", reply.body[:200]
        return
    if reply.status != 200:
        assert_error_body(reply)
        return
    if reply.content_type.startswith("text/event-stream"):
        events = parse_sse(reply.body)
        assert events, reply.body[:300]
        messages = [strict_json(data) for _, data in events]
        for message in messages[:-1]:
            assert_jsonrpc_message(message, allow_notifications=True)
        last = messages[-1]
        for item in last if isinstance(last, list) else [last]:
            assert_jsonrpc_message(item)
        return
    assert reply.content_type.startswith("application/json"), reply.headers
    data = reply.json()
    if isinstance(data, list):
        assert data, "an empty batch reply must be a 202 instead"
        for item in data:
            assert_jsonrpc_message(item)
    else:
        assert_jsonrpc_message(data)


def check_rest_reply(reply: Reply) -> None:
    """The answer to any POST /mcp/tool/call."""
    assert_no_leak(reply.body)
    assert reply.status in (200, 400, 404, 413, 415), (reply.status, reply.body[:300])
    if reply.status == 200:
        assert reply.content_type.startswith("application/json"), reply.headers
        assert_tool_result(reply.json())
    else:
        assert_error_body(reply)
