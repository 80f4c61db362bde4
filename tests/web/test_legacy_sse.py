"""Legacy HTTP+SSE at /mcp/sse: the endpoint event, POST statuses, binding, cleanup."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from .. import support
from ..conftest import KEY, OTHER_KEY, body_json
from ..sse_reader import SseReader
from ..support import rpc


async def open_stream(base_url: str, *, query_key: bool = False, key: str = KEY):
    if query_key:
        return await SseReader.open(
            base_url + f"/mcp/sse?api_key={key}", headers={"Accept": "text/event-stream"}
        )
    return await SseReader.open(
        base_url + "/mcp/sse",
        headers={"Accept": "text/event-stream", "Authorization": f"Bearer {key}"},
    )


async def endpoint_of(reader: SseReader) -> str:
    event, data = await reader.next()
    assert event == "endpoint"
    return data


@pytest.mark.gen_test
async def test_endpoint_event_with_header_auth(api, base_url):
    reader = await open_stream(base_url)
    assert reader.code == 200
    assert reader.headers["content-type"].startswith("text/event-stream")
    assert reader.headers["cache-control"].startswith("no-cache")
    assert reader.headers["x-accel-buffering"] == "no"
    endpoint = await endpoint_of(reader)
    assert endpoint.startswith("/mcp/sse?session_id=")  # path-absolute, same origin
    assert "api_key" not in endpoint
    reader.close()


@pytest.mark.gen_test
async def test_endpoint_hands_back_the_callers_query_key(api, base_url):
    reader = await open_stream(base_url, query_key=True, key=OTHER_KEY)
    endpoint = await endpoint_of(reader)
    assert parse_qs(urlsplit(endpoint).query)["api_key"] == [OTHER_KEY]
    # A client that cannot send headers posts to exactly that URL.
    response = await api.request(
        endpoint, "POST", key=None, json_body=rpc("initialize", protocolVersion="2024-11-05")
    )
    assert response.code == 202 and response.body == b"Accepted"
    assert response.headers["Content-Type"].startswith("text/plain")
    reply = await reader.next_json()
    assert reply["result"]["protocolVersion"] == "2024-11-05"
    reader.close()


@pytest.mark.gen_test
async def test_replies_go_out_on_the_stream_in_order(api, base_url):
    reader = await open_stream(base_url)
    endpoint = await endpoint_of(reader)
    await api.request(endpoint, "POST", json_body=rpc("initialize", protocolVersion="2025-06-18"))
    assert (await reader.next_json())["id"] == 1
    await api.request(endpoint, "POST", json_body=rpc("notifications/initialized", None))
    await api.request(
        endpoint, "POST", json_body=rpc("tools/call", 2, name="echo", arguments={"text": "a"})
    )
    reply = await reader.next_json()
    assert reply["id"] == 2 and reply["result"]["structuredContent"] == {"text": "a"}
    await api.request(
        endpoint,
        "POST",
        json_body=rpc(
            "tools/call",
            3,
            name="slow",
            arguments={"seconds": 0.05, "steps": 2},
            _meta={"progressToken": 99},
        ),
    )
    messages = [await reader.next_json() for _ in range(4)]
    assert [m.get("method") for m in messages] == ["notifications/progress"] * 3 + [None]
    assert messages[-1]["id"] == 3
    await api.request(endpoint, "POST", json_body=rpc("nope", 4))
    assert (await reader.next_json())["error"]["code"] == -32601
    reader.close()


@pytest.mark.gen_test
async def test_post_statuses(api, base_url):
    reader = await open_stream(base_url)
    endpoint = await endpoint_of(reader)
    session_id = parse_qs(urlsplit(endpoint).query)["session_id"][0]
    ping = rpc("ping")
    assert (await api.request("/mcp/sse", "POST", json_body=ping)).code == 400
    assert (await api.request("/mcp/sse?session_id=xyz", "POST", json_body=ping)).code == 400
    missing = await api.request("/mcp/sse?session_id=" + "0" * 32, "POST", json_body=ping)
    assert missing.code == 404
    assert body_json(missing)["id"] == ping["id"]  # a JSON-RPC error naming the request
    assert body_json(missing)["error"]["code"] == -32001
    # Another key cannot post into this session, and cannot learn that it exists.
    other = await api.request(endpoint, "POST", json_body=ping, key=OTHER_KEY)
    assert other.code == 404
    wrong_type = await api.request(
        endpoint, "POST", body=json.dumps(ping), headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.code == 415
    bad = await api.request(
        endpoint, "POST", body=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert bad.code == 400 and body_json(bad)["error"]["code"] == -32700
    assert session_id in endpoint
    reader.close()


@pytest.mark.gen_test
async def test_keepalive_comments(api, base_url):
    reader = await open_stream(base_url)
    await endpoint_of(reader)
    await asyncio.sleep(0.7)  # sse_keepalive is 0.2 s in tests
    assert reader.comments >= 2
    reader.close()


@pytest.mark.gen_test
async def test_closing_the_stream_ends_the_session_and_its_calls(api, base_url, ctx, logs):
    reader = await open_stream(base_url)
    endpoint = await endpoint_of(reader)
    await api.request(
        endpoint,
        "POST",
        json_body=rpc("tools/call", 1, name="slow", arguments={"seconds": 20, "label": "sse-gone"}),
    )
    for _ in range(100):
        if "sse-gone" in support.STARTED:
            break
        await asyncio.sleep(0.02)
    reader.close()
    for _ in range(100):
        if "sse-gone" in support.CANCELLED and len(ctx.legacy_sessions) == 0:
            break
        await asyncio.sleep(0.02)
    assert "sse-gone" in support.CANCELLED
    assert len(ctx.legacy_sessions) == 0 and not ctx.requests.streams
    assert (await api.request(endpoint, "POST", json_body=rpc("ping"))).code == 404
    text = logs.stdout_text()
    assert "Uncaught exception" not in text and "unhandled_exception" not in text


@pytest.mark.gen_test
async def test_cancelled_notification_on_sse(api, base_url):
    reader = await open_stream(base_url)
    endpoint = await endpoint_of(reader)
    await api.request(
        endpoint,
        "POST",
        json_body=rpc("tools/call", 8, name="slow", arguments={"seconds": 20, "label": "sse-c8"}),
    )
    for _ in range(100):
        if "sse-c8" in support.STARTED:
            break
        await asyncio.sleep(0.02)
    await api.request(endpoint, "POST", json_body=rpc("notifications/cancelled", None, requestId=8))
    await api.request(endpoint, "POST", json_body=rpc("ping", 9))
    reply = await reader.next_json()
    assert reply == {"jsonrpc": "2.0", "id": 9, "result": {}}  # nothing was sent for id 8
    assert "sse-c8" in support.CANCELLED
    reader.close()
