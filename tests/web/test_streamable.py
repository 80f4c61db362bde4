"""Streamable HTTP at /mcp, byte by byte: status codes, sessions, versions, origins, streams."""

from __future__ import annotations

import asyncio
import json

import pytest

from .. import support
from ..conftest import KEY, OTHER_KEY, body_json, with_settings
from ..sse_reader import SseReader
from ..support import initialize_request, rpc


async def initialize(api, version="2025-06-18", key=KEY):
    response = await api.mcp(initialize_request(version=version), key=key)
    assert response.code == 200, response.body
    return response.headers["Mcp-Session-Id"], body_json(response)["result"]


@pytest.mark.gen_test
async def test_jsonrpc_errors_and_statuses(api):
    response = await api.request(
        "/mcp", "POST", body=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.code == 400
    assert body_json(response) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": body_json(response)["error"]["message"]},
    }
    for bad in (
        {"jsonrpc": "1.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "id": None, "method": "ping"},
        [],
        "ping",
        7,
        {"jsonrpc": "2.0", "id": 1.5, "method": "ping"},
    ):
        response = await api.mcp(bad)
        assert response.code == 400, bad
        assert body_json(response)["error"]["code"] == -32600, bad
    response = await api.mcp(rpc("no/such/method"))
    assert response.code == 200
    assert body_json(response)["error"]["code"] == -32601
    response = await api.mcp(rpc("tools/call", name="nope", arguments={}))
    assert body_json(response)["error"] == {"code": -32602, "message": "Unknown tool: nope"}
    response = await api.mcp(rpc("tools/call", name="echo", arguments=[1]))
    assert body_json(response)["error"]["code"] == -32602
    response = await api.mcp(rpc("tools/list", cursor="abc"))
    assert body_json(response)["error"]["code"] == -32602
    response = await api.mcp(rpc("logging/setLevel", level="loud"))
    assert body_json(response)["error"]["code"] == -32602
    response = await api.mcp(rpc("ping", id_="p-1"))
    assert body_json(response) == {"jsonrpc": "2.0", "id": "p-1", "result": {}}


@pytest.mark.gen_test
async def test_notifications_and_responses_get_202_without_body(api):
    for message in (
        rpc("notifications/initialized", id_=None),
        rpc("notifications/unknown", id_=None),
        {"jsonrpc": "2.0", "id": 9, "result": {}},
    ):
        response = await api.mcp(message)
        assert response.code == 202 and response.body == b""


@pytest.mark.gen_test
async def test_initialize_negotiates_and_issues_a_session(api):
    session_id, result = await initialize(api, "2025-06-18")
    assert result["protocolVersion"] == "2025-06-18"
    assert result["serverInfo"]["title"] == "AegisGitea MCP"
    assert result["capabilities"] == {"tools": {"listChanged": False}, "logging": {}}
    assert (
        len(result["instructions"][:512]) == 512
        and "list_repositories" in result["instructions"][:512]
    )
    assert all(0x21 <= ord(c) <= 0x7E for c in session_id)
    _, old = await initialize(api, "2024-11-05")
    assert old["protocolVersion"] == "2024-11-05" and "title" not in old["serverInfo"]
    _, future = await initialize(api, "2099-01-01")
    assert future["protocolVersion"] == "2025-11-25"
    response = await api.mcp(rpc("initialize", capabilities={}))  # no version at all
    assert body_json(response)["result"]["protocolVersion"] == "2025-11-25"


@pytest.mark.parametrize(
    "version, annotations, title, structured",
    [
        ("2024-11-05", False, False, False),
        ("2025-03-26", True, False, False),
        ("2025-06-18", True, True, True),
        ("2025-11-25", True, True, True),
    ],
)
@pytest.mark.gen_test
async def test_fields_follow_the_negotiated_version(api, version, annotations, title, structured):
    session_id, _ = await initialize(api, version)
    headers = {"Mcp-Session-Id": session_id}
    tools = body_json(await api.mcp(rpc("tools/list"), headers=headers))["result"]["tools"]
    echo = next(t for t in tools if t["name"] == "echo")
    assert ("annotations" in echo) == annotations
    assert ("title" in echo) == title
    assert echo["inputSchema"]["type"] == "object" and echo["description"]
    result = body_json(
        await api.mcp(rpc("tools/call", name="echo", arguments={"text": "x"}), headers=headers)
    )["result"]
    assert ("structuredContent" in result) == structured
    assert json.loads(result["content"][0]["text"]) == {"text": "x"}


@pytest.mark.gen_test
async def test_sessionless_requests_are_served(api):
    # Hosted clients drop Mcp-Session-Id after initialize: still served, version from the
    # header, else 2025-03-26.
    response = await api.mcp(rpc("tools/call", name="echo", arguments={"text": "x"}))
    assert response.code == 200
    assert "structuredContent" not in body_json(response)["result"]
    response = await api.mcp(
        rpc("tools/call", name="echo", arguments={"text": "x"}),
        headers={"MCP-Protocol-Version": "2025-06-18"},
    )
    assert body_json(response)["result"]["structuredContent"] == {"text": "x"}


@pytest.mark.gen_test
async def test_protocol_version_header(api):
    # A version header that is not a handshake-era one selects the stateless era, whose
    # rejections name the request's id and, for a version, the versions served.
    response = await api.mcp(rpc("ping", 7), headers={"MCP-Protocol-Version": "1999-01-01"})
    assert response.code == 400
    assert body_json(response)["id"] == 7
    assert body_json(response)["error"]["code"] == -32602  # no _meta: malformed first
    meta = {
        "io.modelcontextprotocol/protocolVersion": "1999-01-01",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    response = await api.mcp(
        rpc("tools/list", "v", _meta=meta),
        headers={"MCP-Protocol-Version": "1999-01-01", "Mcp-Method": "tools/list"},
    )
    assert response.code == 400
    assert body_json(response) == {
        "jsonrpc": "2.0",
        "id": "v",
        "error": {
            "code": -32022,
            "message": "Unsupported protocol version",
            "data": {
                "supported": ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"],
                "requested": "1999-01-01",
            },
        },
    }


@pytest.mark.gen_test
async def test_batches_only_under_2025_03_26(api):
    batch = [
        rpc("ping", 1),
        rpc("notifications/initialized", None),
        rpc("tools/list", 2),
        {"jsonrpc": "2.0"},
    ]
    response = await api.mcp(batch, headers={"MCP-Protocol-Version": "2025-03-26"})
    assert response.code == 200
    replies = body_json(response)
    assert [r.get("id") for r in replies] == [1, 2, None]
    assert replies[2]["error"]["code"] == -32600
    response = await api.mcp(batch, headers={"MCP-Protocol-Version": "2025-06-18"})
    assert response.code == 400
    response = await api.mcp(
        [rpc("initialize", 1, protocolVersion="2025-03-26")],
        headers={"MCP-Protocol-Version": "2025-03-26"},
    )
    assert body_json(response)[0]["error"]["code"] == -32600


@pytest.mark.gen_test
async def test_session_ids_are_bound_verified_and_ended(api):
    session_id, _ = await initialize(api)
    ok = await api.mcp(rpc("ping"), headers={"Mcp-Session-Id": session_id})
    assert ok.code == 200
    # The same id with another (valid) key is as good as forged.
    other = await api.mcp(rpc("ping"), headers={"Mcp-Session-Id": session_id}, key=OTHER_KEY)
    assert other.code == 404
    forged = session_id[:-2] + ("AA" if not session_id.endswith("AA") else "BB")
    for bad in (forged, "nonsense", "a.b.c", "x" * 500):
        response = await api.mcp(rpc("ping", "r-9"), headers={"Mcp-Session-Id": bad})
        assert response.code == 404, bad
        assert body_json(response)["error"]["code"] == -32001
        assert body_json(response)["id"] == "r-9"  # the reply names the request it answers
    assert (
        await api.request("/mcp", "DELETE", headers={"Mcp-Session-Id": session_id}, key=OTHER_KEY)
    ).code == 404
    assert (await api.request("/mcp", "DELETE", headers={"Mcp-Session-Id": session_id})).code == 204
    deleted = await api.mcp(rpc("ping", 41), headers={"Mcp-Session-Id": session_id})
    assert deleted.code == 404 and body_json(deleted)["id"] == 41
    assert (await api.request("/mcp", "DELETE")).code == 400


@with_settings(max_sessions=3)
@pytest.mark.gen_test
async def test_sessions_are_capped_and_evicted_ids_recover(api, ctx):
    ids = [(await initialize(api))[0] for _ in range(6)]
    assert len(ctx.sessions) == 3
    # An evicted session's signed id is rebuilt rather than refused: clients rarely recover
    # from a 404.
    response = await api.mcp(
        rpc("ping"), headers={"Mcp-Session-Id": ids[0], "MCP-Protocol-Version": "2025-06-18"}
    )
    assert response.code == 200
    assert len(ctx.sessions) == 3


@pytest.mark.gen_test
async def test_the_session_remembers_its_version(api):
    session_id, _ = await initialize(api, "2025-06-18")
    response = await api.mcp(
        rpc("tools/call", name="echo", arguments={"text": "v"}),
        headers={"Mcp-Session-Id": session_id},
    )
    assert "structuredContent" in body_json(response)["result"]


@pytest.mark.gen_test
async def test_progress_token_gets_an_event_stream(api, base_url):
    reader = await support.post_mcp(
        base_url,
        KEY,
        rpc(
            "tools/call",
            7,
            name="slow",
            arguments={"seconds": 0.1, "steps": 2},
            _meta={"progressToken": "tok"},
        ),
    )
    assert reader.code == 200
    assert reader.headers["content-type"].startswith("text/event-stream")
    assert reader.headers["cache-control"].startswith("no-cache")
    assert reader.headers["x-accel-buffering"] == "no"
    messages = []
    while True:
        message = await reader.next_json()
        messages.append(message)
        if "id" in message:
            break
    assert await reader.closed()
    progress = [m["params"]["progress"] for m in messages[:-1]]
    assert progress == [0, 1, 2] and messages[-1]["id"] == 7
    assert all(m["params"]["progressToken"] == "tok" for m in messages[:-1])
    reader.close()


@pytest.mark.gen_test
async def test_without_event_stream_accept_the_reply_is_json(api):
    response = await api.request(
        "/mcp",
        "POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        body=json.dumps(
            rpc("tools/call", name="slow", arguments={"seconds": 0}, _meta={"progressToken": 1})
        ),
    )
    assert response.headers["Content-Type"].startswith("application/json")
    assert body_json(response)["result"]["content"]


@pytest.mark.gen_test
async def test_cancelled_notification_stops_the_call_and_sends_nothing(api, base_url):
    session_id, _ = await initialize(api)
    reader = await support.post_mcp(
        base_url,
        KEY,
        rpc(
            "tools/call",
            41,
            name="slow",
            arguments={"seconds": 20, "label": "c41"},
            _meta={"progressToken": "t"},
        ),
        headers={"Mcp-Session-Id": session_id},
    )
    first = await reader.next_json()
    assert first["method"] == "notifications/progress"
    cancel = await api.mcp(
        rpc("notifications/cancelled", None, requestId=41, reason="user"),
        headers={"Mcp-Session-Id": session_id},
    )
    assert cancel.code == 202
    messages = []
    while True:
        event, data = await reader.next()
        if event == "<closed>":
            break
        messages.append(json.loads(data))
    assert not any("id" in m for m in messages)  # no response for a cancelled request
    assert "c41" in support.CANCELLED
    reader.close()


@pytest.mark.gen_test
async def test_a_client_that_disconnects_mid_call_cancels_it(api, base_url, logs):
    reader = await support.post_mcp(
        base_url,
        KEY,
        rpc("tools/call", 5, name="slow", arguments={"seconds": 20, "label": "gone"}),
        accept="application/json",
        wait=False,
    )  # a JSON reply: no headers until the call ends
    for _ in range(100):
        if "gone" in support.STARTED:
            break
        await asyncio.sleep(0.02)
    reader.close()
    for _ in range(100):
        if "gone" in support.CANCELLED:
            break
        await asyncio.sleep(0.02)
    assert "gone" in support.CANCELLED
    await asyncio.sleep(0.1)
    text = logs.stdout_text()
    assert "Uncaught exception" not in text and "unhandled_exception" not in text
    [call] = logs.audit("tool_call")
    assert call["reason"] == "cancelled"


@pytest.mark.gen_test
async def test_get_holds_a_stream_open_with_keepalives(api, base_url, ctx):
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"}
    reader = await SseReader.open(base_url + "/mcp", headers=headers)
    assert reader.code == 200
    assert reader.headers["x-accel-buffering"] == "no"
    await asyncio.sleep(0.7)  # sse_keepalive is 0.2 s in tests
    assert reader.comments >= 2
    assert len(ctx.requests.streams) == 1
    reader.close()
    for _ in range(50):
        if not ctx.requests.streams:
            break
        await asyncio.sleep(0.02)
    assert not ctx.requests.streams
    assert (await api.request("/mcp", headers={"Accept": "application/json"})).code == 406


@pytest.mark.gen_test
async def test_foreign_origins_are_refused(api):
    port = api.base_url.rsplit(":", 1)[1]
    for origin, code in (
        ("https://evil.example", 403),
        ("null", 403),
        (f"http://127.0.0.1:{port}", 200),  # same origin
        ("http://localhost:3000", 200),
    ):  # localhost, as we listen on it
        response = await api.mcp(rpc("ping"), headers={"Origin": origin})
        assert response.code == code, origin
    assert (await api.request("/mcp/tools", headers={"Origin": "https://evil.example"})).code == 403


@with_settings(host="0.0.0.0", allowed_origins=("https://chatgpt.com",))
@pytest.mark.gen_test
async def test_allowed_origins_setting(api):
    assert (await api.mcp(rpc("ping"), headers={"Origin": "https://chatgpt.com"})).code == 200
    assert (await api.mcp(rpc("ping"), headers={"Origin": "http://localhost:3000"})).code == 403


@with_settings(auth_enabled=False)
@pytest.mark.gen_test
async def test_unauthenticated_localhost_server_refuses_foreign_hosts(api):
    assert (await api.mcp(rpc("ping"), headers={"Host": "evil.example.com"})).code == 403
    assert (await api.mcp(rpc("ping"), headers={"Host": "localhost:8080"})).code == 200


@pytest.mark.gen_test
async def test_authenticated_server_accepts_any_host(api):
    # With keys, DNS rebinding gains nothing: the attacker's page has no key.
    assert (await api.mcp(rpc("ping"), headers={"Host": "mcp.example.com"})).code == 200
