"""Regression tests for what the fuzzers found at the transports, one finding per test.

Each was a 500, a hang or an ambiguity before the fix named in its docstring.
"""

from __future__ import annotations

import json

import pytest

from aegis_tornado.mcp.arguments import ArgumentError, validate_arguments
from aegis_tornado.mcp.registry import Tool

from ..conftest import KEY, body_json
from ..sse_reader import SseReader
from ..support import demo_tools, post_mcp, rpc
from .conftest import strict_json

JSON = {"Content-Type": "application/json"}


async def _weird_output(arguments, context):
    return {"text": "lone \ud800 surrogate", "ratio": float("nan"), "big": float("inf")}


@pytest.fixture
def registry():
    tools = demo_tools()
    tools.add(
        Tool("weird", "Weird", "Returns what JSON cannot say.", {"type": "object"}, _weird_output)
    )
    return tools


# --- ambiguous or unsendable JSON in requests: 400 everywhere, the same reason ----------

HOSTILE_BODIES = [
    pytest.param(
        b'{"tool":"echo","arguments":{"text":"\\ud800"}}', "lone surrogate", id="surrogate"
    ),
    pytest.param(
        b'{"tool":"echo","arguments":{"\\udfff":"x"}}', "lone surrogate", id="surrogate-key"
    ),
    pytest.param(b'{"tool":"slow","arguments":{"seconds":NaN}}', "NaN", id="nan"),
    pytest.param(b'{"tool":"slow","arguments":{"seconds":-Infinity}}', "-Infinity", id="infinity"),
    pytest.param(b'{"tool":"slow","arguments":{"seconds":1e400}}', "too large", id="overflow"),
    pytest.param(
        b'{"tool":"echo","tool":"crash","arguments":{}}', 'duplicate key "tool"', id="duplicate-key"
    ),
]


@pytest.mark.parametrize("body, reason", HOSTILE_BODIES)
@pytest.mark.gen_test
async def test_rest_refuses_json_it_cannot_read_unambiguously(api, logs, body, reason):
    """Was: a surrogate echoed back made the reply unencodable (500); NaN passed every bound
    check and hung the call (asyncio.sleep(nan)); duplicate keys silently took the last one.
    Fixed by one strict decoder for every body (aegis_tornado/untrusted_json.py)."""
    response = await api.request("/mcp/tool/call", "POST", body=body, headers=JSON)
    assert response.code == 400
    message = body_json(response)["message"]
    assert message.startswith("Request body is not valid JSON") and reason in message
    assert logs.audit("tool_call") == []  # refused before any tool ran


def as_jsonrpc(body: bytes) -> bytes:
    """The same hostile call, as a tools/call message (the duplicate stays a duplicate)."""
    inner = body[len(b'{"tool":') : -1].replace(b',"tool":', b',"name":')
    return b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":' + inner + b"}}"


@pytest.mark.parametrize("body, reason", HOSTILE_BODIES)
@pytest.mark.gen_test
async def test_mcp_refuses_the_same_bodies_as_parse_errors(api, body, reason):
    response = await api.request("/mcp", "POST", body=as_jsonrpc(body), headers=JSON)
    assert response.code == 400
    error = body_json(response)["error"]
    assert error["code"] == -32700 and reason.replace("tool", "name") in error["message"]


@pytest.mark.gen_test
async def test_legacy_sse_refuses_them_too(api, base_url):
    reader = await SseReader.open(
        base_url + "/mcp/sse",
        headers={"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"},
    )
    _, endpoint = await reader.next()
    for body in (
        b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\\ud800"}}',
        b'{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}',
    ):
        response = await api.request(endpoint, "POST", body=body, headers=JSON)
        assert response.code == 400 and body_json(response)["error"]["code"] == -32700
    reader.close()


def test_non_finite_numbers_never_pass_argument_validation():
    """Was: NaN compares False with every bound, so ``minimum``/``maximum`` let it through."""
    schema = {
        "type": "object",
        "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": 60}},
    }
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ArgumentError, match="must be a number"):
            validate_arguments({"seconds": value}, schema)


# --- replies are always valid UTF-8 JSON, whatever a tool returns ------------------------


@pytest.mark.gen_test
async def test_a_tool_returning_unencodable_values_still_gets_a_valid_reply(api, base_url):
    """Was: 500 (UnicodeEncodeError) for a lone surrogate, and 'NaN' (not JSON) in the body.
    Fixed in ``jsonrpc.encode``: U+FFFD for lone surrogates, null for non-finite numbers."""
    for response in (
        await api.request("/mcp/tool/call", "POST", json_body={"tool": "weird"}),
        await api.mcp(
            rpc("tools/call", name="weird", arguments={}),
            headers={"MCP-Protocol-Version": "2025-06-18"},
        ),
    ):
        assert response.code == 200
        reply = strict_json(response.body)  # UTF-8, no NaN
        result = reply.get("result", reply)
        assert result["structuredContent"] == {
            "text": "lone \ufffd surrogate",
            "ratio": None,
            "big": None,
        }
    # On an event stream too (progress requested, so the reply goes out as SSE).
    reader = await post_mcp(
        base_url,
        KEY,
        rpc("tools/call", 3, name="weird", arguments={}, _meta={"progressToken": "p"}),
    )
    while True:
        message = strict_json((await reader.next())[1])
        if message.get("id") == 3:
            assert "\ufffd" in message["result"]["content"][0]["text"]
            break
    reader.close()


# --- session ids that are not ASCII -----------------------------------------------------


@pytest.mark.parametrize("session_id", ["1.\u00e9.\u00e9", "\u00ff" * 10, "a.b.c\u0085", "x" * 129])
@pytest.mark.gen_test
async def test_non_ascii_session_ids_are_not_found_not_a_crash(api, session_id):
    """Was: 500, because ``hmac.compare_digest`` raises TypeError on non-ASCII strings."""
    headers = {"Mcp-Session-Id": session_id}
    post = await api.mcp(rpc("ping"), headers=headers)
    assert post.code == 404 and body_json(post)["error"]["code"] == -32001
    delete = await api.request("/mcp", "DELETE", headers=headers)
    assert delete.code == 404
    get = await api.request("/mcp", headers={**headers, "Accept": "text/event-stream"})
    assert get.code == 404


# --- content types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json-seq",
        "text/json",
    ],
)
@pytest.mark.gen_test
async def test_post_mcp_needs_a_json_content_type(api, content_type):
    """Was: /mcp parsed any body whatever its type (the other POST routes answered 415), so a
    cross-site form or text/plain 'simple request' reached the JSON-RPC parser."""
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    response = await api.request("/mcp", "POST", headers=headers, body=json.dumps(rpc("ping")))
    assert response.code == 415
    assert body_json(response)["error"]["message"] == "Content-Type must be application/json"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        " application/json ;charset=UTF-8",
    ],
)
@pytest.mark.gen_test
async def test_json_content_types_are_accepted_however_written(api, content_type):
    for path, body in (
        ("/mcp", rpc("ping")),
        ("/mcp/tool/call", {"tool": "echo", "arguments": {"text": "x"}}),
    ):
        response = await api.request(
            path, "POST", body=json.dumps(body), headers={"Content-Type": content_type}
        )
        assert response.code == 200, (path, content_type)


@pytest.mark.gen_test
async def test_an_initialize_notification_is_ignored_like_any_notification(api, ctx):
    """Was: 200 with the body 'null' and a new session per message (found by the fuzzer)."""
    response = await api.mcp({"jsonrpc": "2.0", "method": "initialize", "params": {}})
    assert response.code == 202 and response.body == b""
    assert "Mcp-Session-Id" not in response.headers and len(ctx.sessions) == 0


@pytest.mark.gen_test
async def test_one_batch_cannot_start_thousands_of_calls(api, base_url, logs):
    """Was: a 900 KB batch of 8000 tools/call ran 8000 calls at once (each one a Gitea request
    with the real tools). Batches now hold at most 50 messages, on both transports."""

    def batch(size):
        return [rpc("tools/call", n, name="echo", arguments={"text": "x"}) for n in range(size)]

    headers = {"MCP-Protocol-Version": "2025-03-26"}
    response = await api.mcp(batch(51), headers=headers)
    assert response.code == 400
    assert "at most 50 messages" in body_json(response)["error"]["message"]
    assert logs.audit("tool_call") == []
    response = await api.mcp(batch(50), headers=headers)
    assert response.code == 200 and len(body_json(response)) == 50
    # Legacy SSE: refused at the POST as well.
    reader = await SseReader.open(base_url + "/mcp/sse", headers={"Authorization": f"Bearer {KEY}"})
    _, endpoint = await reader.next()
    refused = await api.request(endpoint, "POST", body=json.dumps(batch(51)), headers=JSON)
    assert refused.code == 400 and body_json(refused)["error"]["code"] == -32600
    reader.close()
