"""REST access: GET /mcp/tools and POST /mcp/tool/call."""

from __future__ import annotations

import json

import pytest

from ..conftest import body_json


@pytest.mark.gen_test
async def test_tool_list_matches_tools_list(api):
    rest = body_json(await api.request("/mcp/tools"))
    mcp = body_json(
        await api.mcp(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"MCP-Protocol-Version": "2025-11-25"},
        )
    )
    assert rest == mcp["result"]


@pytest.mark.gen_test
async def test_call_returns_a_call_tool_result(api):
    response = await api.request(
        "/mcp/tool/call", "POST", json_body={"tool": "echo", "arguments": {"text": "ok"}}
    )
    assert response.code == 200
    result = body_json(response)
    assert result["structuredContent"] == {"text": "ok"}
    assert json.loads(result["content"][0]["text"]) == {"text": "ok"}
    alias = await api.request(
        "/mcp/tool/call", "POST", json_body={"name": "echo", "arguments": {"text": "alias"}}
    )
    assert body_json(alias)["structuredContent"] == {"text": "alias"}


@pytest.mark.gen_test
async def test_tool_errors_are_200_with_is_error(api):
    response = await api.request("/mcp/tool/call", "POST", json_body={"tool": "fail"})
    assert response.code == 200 and body_json(response)["isError"] is True
    response = await api.request(
        "/mcp/tool/call", "POST", json_body={"tool": "echo", "arguments": {"text": "x", "y": 1}}
    )
    assert body_json(response)["isError"] is True
    assert "unknown argument" in body_json(response)["content"][0]["text"]


@pytest.mark.parametrize(
    "body, headers, code, fragment",
    [
        (b"{not json", None, 400, "not valid JSON"),
        (b"[1, 2]", None, 400, "must be a JSON object"),
        (b'{"arguments": {}}', None, 400, '"tool" must be'),
        (b'{"tool": 5}', None, 400, '"tool" must be'),
        (b'{"tool": "echo", "arguments": [1]}', None, 400, '"arguments" must be'),
        (b'{"tool": "nope"}', None, 404, "Unknown tool: nope"),
        (b'{"tool": "echo"}', {"Content-Type": "text/plain"}, 415, "application/json"),
        (b"\xff\xfe{}", None, 400, "not valid JSON"),
    ],
)
@pytest.mark.gen_test
async def test_bad_requests_get_clear_json_errors(api, body, headers, code, fragment):
    response = await api.request(
        "/mcp/tool/call", "POST", body=body, headers=headers or {"Content-Type": "application/json"}
    )
    assert response.code == code
    assert response.headers["Content-Type"].startswith("application/json")
    assert fragment in body_json(response)["message"]
