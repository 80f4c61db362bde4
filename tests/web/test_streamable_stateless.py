"""/mcp in the stateless era (MCP 2026-07-28), byte by byte: the envelope, the routing headers,
the order rejections come in, and what every result carries."""

from __future__ import annotations

import base64
import json

import pytest

from ..conftest import body_json

VERSION = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
}
SERVED = ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]


def request(method: str, id_=1, meta=None, **params):
    params["_meta"] = dict(META if meta is None else meta)
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}


def headers_for(message: dict, **overrides) -> dict[str, str]:
    headers = {"MCP-Protocol-Version": VERSION, "Mcp-Method": message["method"]}
    name = message["params"].get("name") or message["params"].get("uri")
    if name is not None:
        headers["Mcp-Name"] = name
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v is not None}


async def post(api, message: dict, **header_overrides):
    return await api.mcp(message, headers=headers_for(message, **header_overrides))


@pytest.mark.gen_test
async def test_discover_names_versions_capabilities_and_caching(api):
    response = await post(api, request("server/discover", "d-1"))
    assert response.code == 200
    assert "Mcp-Session-Id" not in response.headers
    reply = body_json(response)
    assert reply["id"] == "d-1"
    result = reply["result"]
    assert result["resultType"] == "complete"
    assert result["supportedVersions"] == SERVED
    assert result["capabilities"]["tools"] == {"listChanged": False}
    assert "list_repositories" in result["instructions"]
    assert result["ttlMs"] == 3_600_000 and result["cacheScope"] == "public"
    assert "serverInfo" not in result  # 2026-07-28 moved it into _meta
    info = result["_meta"]["io.modelcontextprotocol/serverInfo"]
    assert info["name"] == "aegis-gitea-mcp" and info["title"] == "AegisGitea MCP"


@pytest.mark.gen_test
async def test_tools_list_and_call_results_are_complete_and_cacheable(api):
    listed = body_json(await post(api, request("tools/list")))["result"]
    assert listed["resultType"] == "complete"
    # Per-key scopes make the list depend on the caller: never cached across callers.
    assert listed["ttlMs"] == 300_000 and listed["cacheScope"] == "private"
    assert [t["name"] for t in listed["tools"]] == ["echo", "slow", "fail", "denied", "crash"]
    assert all("execution" not in t and t["annotations"]["readOnlyHint"] for t in listed["tools"])
    assert "io.modelcontextprotocol/serverInfo" in listed["_meta"]
    called = body_json(
        await post(api, request("tools/call", 2, name="echo", arguments={"text": "x"}))
    )
    assert called["result"]["resultType"] == "complete"
    assert called["result"]["structuredContent"] == {"text": "x"}
    assert json.loads(called["result"]["content"][0]["text"]) == {"text": "x"}
    # arguments may be omitted; a tool error is a result, not a protocol error
    failed = body_json(await post(api, request("tools/call", 3, name="fail")))["result"]
    assert failed["isError"] is True and failed["resultType"] == "complete"
    unknown = await post(api, request("tools/call", 4, name="nope", arguments={}))
    assert unknown.code == 200
    assert body_json(unknown)["error"]["code"] == -32602 and body_json(unknown)["id"] == 4


@pytest.mark.gen_test
async def test_the_envelope_is_checked_before_the_headers(api):
    # Missing protocolVersion with a consistent header: -32602, not -32020.
    for meta in (
        {},
        {"io.modelcontextprotocol/clientCapabilities": {}},
        {"io.modelcontextprotocol/protocolVersion": VERSION},
        {
            "io.modelcontextprotocol/protocolVersion": VERSION,
            "io.modelcontextprotocol/clientCapabilities": 1,
        },
    ):
        response = await post(api, request("server/discover", 101, meta=meta))
        assert response.code == 400, meta
        assert body_json(response)["id"] == 101
        assert body_json(response)["error"]["code"] == -32602
    # clientInfo is optional
    meta = {k: v for k, v in META.items() if not k.endswith("clientInfo")}
    assert (await post(api, request("server/discover", meta=meta))).code == 200


@pytest.mark.gen_test
async def test_header_mismatches_come_before_the_version_check(api):
    # The body asks for an unknown version, the header says 2026-07-28: a mismatch (-32020).
    meta = {**META, "io.modelcontextprotocol/protocolVersion": "v999.0.0"}
    response = await post(api, request("server/discover", 302, meta=meta))
    assert response.code == 400
    assert body_json(response)["error"]["code"] == -32020 and body_json(response)["id"] == 302
    # Both say v999.0.0: unsupported (-32022), naming what is served.
    response = await post(
        api, request("server/discover", 301, meta=meta), **{"MCP-Protocol-Version": "v999.0.0"}
    )
    assert response.code == 400
    assert body_json(response) == {
        "jsonrpc": "2.0",
        "id": 301,
        "error": {
            "code": -32022,
            "message": "Unsupported protocol version",
            "data": {"supported": SERVED, "requested": "v999.0.0"},
        },
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"MCP-Protocol-Version": None},
        {"Mcp-Method": None},
        {"Mcp-Method": "prompts/list"},
        {"Mcp-Method": "TOOLS/CALL"},
        {"Mcp-Name": None},
        {"Mcp-Name": "wrong_tool"},
        {"Mcp-Name": "=?base64?ZWNobw?="},  # bad padding
        {"Mcp-Name": "=?base64?ZWN!!obw==?="},  # bad alphabet
        {"Mcp-Name": "=?base64?" + base64.b64encode(b"fail").decode() + "?="},
    ],
    ids=str,
)
@pytest.mark.gen_test
async def test_routing_headers_must_match_the_body(api, overrides):
    message = request("tools/call", "h", name="echo", arguments={"text": "x"})
    response = await post(api, message, **overrides)
    assert response.code == 400
    assert body_json(response)["id"] == "h"
    assert body_json(response)["error"]["code"] == -32020


@pytest.mark.parametrize(
    "overrides",
    [
        {"mcp-method": "tools/call", "Mcp-Method": None},
        {"MCP-METHOD": "tools/call", "Mcp-Method": None},
        {"Mcp-Name": "  echo  "},
        {"Mcp-Name": "=?base64?" + base64.b64encode(b"echo").decode() + "?="},
        {"Mcp-Name": "=?base64?ZWNobw==", "_expect": "literal"},
    ],
    ids=str,
)
@pytest.mark.gen_test
async def test_routing_headers_are_read_as_the_spec_says(api, overrides):
    overrides = dict(overrides)
    literal = overrides.pop("_expect", None)
    message = request("tools/call", 5, name="echo", arguments={"text": "x"})
    if literal:
        # Without its closing marker the value is literal: it must equal the body's name.
        message["params"]["name"] = overrides["Mcp-Name"]
        response = await post(api, message, **overrides)
        assert response.code == 200 and body_json(response)["error"]["code"] == -32602
        return
    response = await post(api, message, **overrides)
    assert response.code == 200, response.body
    assert body_json(response)["result"]["structuredContent"] == {"text": "x"}


@pytest.mark.parametrize(
    "method",
    ["initialize", "ping", "logging/setLevel", "resources/subscribe", "prompts/list", "x/y"],
)
@pytest.mark.gen_test
async def test_removed_and_unknown_methods_are_404_with_a_jsonrpc_body(api, method):
    response = await post(api, request(method, 500, protocolVersion=VERSION, capabilities={}))
    assert response.code == 404
    assert body_json(response)["id"] == 500
    assert body_json(response)["error"]["code"] == -32601


@pytest.mark.gen_test
async def test_notifications_batches_responses_and_sessions(api):
    note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"_meta": META}}
    response = await api.mcp(note, headers={"MCP-Protocol-Version": VERSION})
    assert response.code == 202 and response.body == b""
    batch = [request("tools/list", 1), request("tools/list", 2)]
    response = await api.mcp(batch, headers={"MCP-Protocol-Version": VERSION})
    assert response.code == 400 and body_json(response)["error"]["code"] == -32600
    reply = {"jsonrpc": "2.0", "id": 9, "result": {}}
    response = await api.mcp(reply, headers={"MCP-Protocol-Version": VERSION})
    assert response.code == 400 and body_json(response)["id"] == 9
    # A session id is ignored, never looked up (no 404) and never issued.
    message = request("tools/list", 3)
    response = await api.mcp(message, headers={**headers_for(message), "Mcp-Session-Id": "bogus"})
    assert response.code == 200 and "Mcp-Session-Id" not in response.headers


@pytest.mark.gen_test
async def test_get_and_delete_do_not_exist_in_this_era(api):
    for verb in ("GET", "DELETE"):
        response = await api.request(
            "/mcp",
            verb,
            headers={"MCP-Protocol-Version": VERSION, "Accept": "text/event-stream"},
        )
        assert response.code == 405, verb
        assert response.headers["Allow"] == "POST"


@pytest.mark.gen_test
async def test_an_invalid_log_level_is_a_params_error(api):
    meta = {**META, "io.modelcontextprotocol/logLevel": "loud"}
    response = await post(
        api, request("tools/call", 8, meta=meta, name="echo", arguments={"text": "x"})
    )
    assert body_json(response)["error"]["code"] == -32602 and body_json(response)["id"] == 8


@pytest.mark.gen_test
async def test_progress_goes_out_on_the_request_stream_without_event_ids(api, base_url):
    meta = {**META, "progressToken": "p1"}
    message = request(
        "tools/call", 11, meta=meta, name="slow", arguments={"seconds": 0.1, "steps": 2}
    )
    response = await post(api, message)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    lines = response.body.decode().splitlines()
    assert not any(line.startswith("id:") for line in lines)  # nothing to resume in this era
    messages = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    progress = [
        m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"
    ]
    assert len(progress) >= 2 and progress == sorted(set(progress))
    assert messages[-1]["id"] == 11 and messages[-1]["result"]["resultType"] == "complete"
    # The request set no log level: no log lines, although the tool logs.
    assert not any(m.get("method") == "notifications/message" for m in messages)
