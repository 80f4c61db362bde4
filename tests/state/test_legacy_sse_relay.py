"""Legacy SSE across replicas: a POST to the replica without the stream is relayed to it."""

from __future__ import annotations

import asyncio

import pytest

from ..conftest import KEY, OTHER_KEY, body_json, with_settings
from ..web.test_legacy_sse import endpoint_of, open_stream, rpc


@pytest.mark.gen_test(timeout=20)
async def test_a_session_opened_on_a_answers_a_post_sent_to_b(
    api, base_url, replica_b, redis_server
):
    reader = await open_stream(base_url)
    endpoint = await endpoint_of(reader)
    session_id = endpoint.split("session_id=", 1)[1]
    # Recorded under the namespace, with a TTL, bound to the key's identity (not the key).
    client = redis_server.client()
    record = client.get(f"aegis:sse:{session_id}")
    assert record is not None and KEY.encode() not in record
    assert client.ttl(f"aegis:sse:{session_id}") > 0

    posted = await replica_b.request(
        endpoint, "POST", json_body=rpc("initialize", protocolVersion="2025-06-18")
    )
    assert posted.code == 202 and posted.body == b"Accepted"
    assert (await reader.next_json())["result"]["protocolVersion"] == "2025-06-18"
    await replica_b.request(endpoint, "POST", json_body=rpc("notifications/initialized", None))
    await replica_b.request(
        endpoint, "POST", json_body=rpc("tools/call", 2, name="echo", arguments={"text": "via b"})
    )
    reply = await reader.next_json()
    assert reply["id"] == 2 and reply["result"]["structuredContent"] == {"text": "via b"}

    # Still bound to its key: another key gets the same 404 as for an unknown session.
    other = await replica_b.request(endpoint, "POST", key=OTHER_KEY, json_body=rpc("tools/list", 3))
    unknown = await replica_b.request(
        "/mcp/sse?session_id=" + "0" * 32, "POST", json_body=rpc("tools/list", 3)
    )
    assert other.code == unknown.code == 404
    assert body_json(other) == body_json(unknown)
    # A malformed body is refused by the replica that took it.
    bad = await replica_b.request(
        endpoint, "POST", body=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.code == 400

    reader.close()
    # The stream ended: its record is gone and B answers 404 again.
    for _ in range(100):
        if client.get(f"aegis:sse:{session_id}") is None:
            break
        await asyncio.sleep(0.05)
    assert client.get(f"aegis:sse:{session_id}") is None
    gone = await replica_b.request(endpoint, "POST", json_body=rpc("tools/list", 4))
    assert gone.code == 404


@with_settings(max_calls_per_key=1)
@pytest.mark.gen_test(timeout=20)
async def test_a_relayed_call_over_the_keys_cap_is_refused_on_the_stream(api, base_url, replica_b):
    reader = await open_stream(base_url)
    endpoint = await endpoint_of(reader)
    await replica_b.request(
        endpoint, "POST", json_body=rpc("initialize", protocolVersion="2025-06-18")
    )
    await reader.next_json()
    await replica_b.request(endpoint, "POST", json_body=rpc("notifications/initialized", None))
    slow = rpc("tools/call", 2, name="slow", arguments={"seconds": 1.0, "steps": 1})
    assert (await replica_b.request(endpoint, "POST", json_body=slow)).code == 202
    echo = rpc("tools/call", 3, name="echo", arguments={"text": "x"})
    assert (await replica_b.request(endpoint, "POST", json_body=echo)).code == 202
    refused = await reader.next_json()
    assert refused["id"] == 3 and refused["error"]["code"] == -32000
    assert "Too many tool calls of this key" in refused["error"]["message"]
    finished = await reader.next_json()
    assert finished["id"] == 2 and "result" in finished
    reader.close()
