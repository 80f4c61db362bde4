"""MAX_SESSIONS_PER_KEY across replicas: each open event stream (legacy SSE, GET /mcp) holds
one of its key's shares in Redis. Two replicas in this process on one real Redis
(``replica_b``); the process-level tests are in ``test_shared_streams_processes.py``."""

from __future__ import annotations

import asyncio
import json

import pytest

from ..conftest import KEY, OTHER_KEY, body_json, with_settings
from ..sse_reader import SseReader
from ..web.test_legacy_sse import endpoint_of, rpc

SSE = {"Accept": "text/event-stream"}


async def legacy(base_url: str, key: str = KEY) -> SseReader:
    return await SseReader.open(
        base_url + "/mcp/sse", headers=SSE | {"Authorization": f"Bearer {key}"}
    )


async def standalone(base_url: str, key: str = KEY) -> SseReader:
    """A GET /mcp stream (no session: the server's messages not tied to a request)."""
    return await SseReader.open(base_url + "/mcp", headers=SSE | {"Authorization": f"Bearer {key}"})


def stream_leases(redis_server) -> dict[bytes, int]:
    client = redis_server.client()
    return {key: client.zcard(key) for key in client.scan_iter("aegis:streams:*")}


async def until(condition, timeout: float = 5.0) -> bool:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


def initialize(id_: int = 1) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": id_,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }


@with_settings(max_sessions_per_key=2)
@pytest.mark.gen_test(timeout=30)
async def test_a_keys_streams_on_two_replicas_share_one_cap(api, replica_b, redis_server):
    a1 = await legacy(api.base_url)
    endpoint = await endpoint_of(a1)
    a2 = await standalone(api.base_url)
    assert a2.code == 200
    [(key, count)] = stream_leases(redis_server).items()
    assert count == 2 and KEY.encode() not in key and KEY[:16].encode() not in key
    assert 0 < redis_server.client().pttl(key) <= 30_000  # a lease: it ends on its own
    # B holds none of this key's streams: it cannot end one to make room, so it refuses.
    for opener in (legacy, standalone):
        third = await opener(replica_b.base_url)
        assert third.code == 429
        assert third.headers["retry-after"] == "5"
        third.close()
    # Another key has its own share; the refusals ended nothing on A.
    other = await legacy(replica_b.base_url, OTHER_KEY)
    assert other.code == 200 and (await other.next())[0] == "endpoint"
    posted = await api.request(endpoint, "POST", json_body=rpc("ping", "a1-alive"))
    assert posted.code == 202
    assert (await a1.next_json())["id"] == "a1-alive"
    # On A, which holds them, the newest wins as in one process: A's oldest hands its share
    # over, with no moment in which B could take it.
    a3 = await standalone(api.base_url)
    assert a3.code == 200
    assert await a1.closed()
    assert stream_leases(redis_server)[key] == 2
    assert (await api.request(endpoint, "POST", json_body=rpc("ping", 2))).code == 404
    for reader in (a2, a3, other):
        reader.close()
    assert await until(lambda: stream_leases(redis_server) == {})


@with_settings(max_sessions_per_key=2)
@pytest.mark.gen_test(timeout=30)
async def test_a_closed_stream_frees_its_share_on_the_other_replica(api, replica_b, redis_server):
    a1 = await legacy(api.base_url)
    a2 = await standalone(api.base_url)
    assert (await standalone(replica_b.base_url)).code == 429
    a1.close()  # the client goes away: its share is given back at once
    assert await until(lambda: list(stream_leases(redis_server).values()) == [1])
    b1 = await standalone(replica_b.base_url)
    assert b1.code == 200
    assert list(stream_leases(redis_server).values()) == [2]
    for reader in (a2, b1):
        reader.close()


@with_settings(max_sessions_per_key=2, stream_lease=1.5, sse_keepalive=0.2)
@pytest.mark.gen_test(timeout=40)
async def test_redis_down_refuses_new_streams_keeps_open_ones_and_recovers(
    api, replica_b, redis_server
):
    a1 = await standalone(api.base_url)
    assert a1.code == 200
    redis_server.stop()
    try:
        refusal = await standalone(replica_b.base_url)
        assert refusal.code == 503 and int(refusal.headers["retry-after"]) >= 1
        refusal.close()
        # The stream opened before keeps running: its keep-alives still come.
        seen = a1.comments
        await asyncio.sleep(2)  # longer than the lease: it ends in the dead Redis meanwhile
        assert a1.comments > seen and a1.events.empty()
    finally:
        redis_server.start()
    # Redis is back, empty: A puts its open stream's share back at its next renewal, so
    # the count again says what is open and B gets only the one share left.
    assert await until(lambda: list(stream_leases(redis_server).values()) == [1])
    b1 = await standalone(replica_b.base_url)
    assert b1.code == 200
    assert list(stream_leases(redis_server).values()) == [2]
    # The key's shares are both taken again: a third stream on B replaces B's own.
    b2 = await legacy(replica_b.base_url)
    assert b2.code == 200 and await b1.closed()
    assert list(stream_leases(redis_server).values()) == [2]
    assert a1.events.empty()  # A's stream, opened before the outage, is still open
    for reader in (a1, b2):
        reader.close()


@with_settings(max_sessions_per_key=2)
@pytest.mark.gen_test(timeout=30)
async def test_a_session_s_get_stream_counts_and_its_replacement_keeps_the_share(
    api, replica_b, redis_server
):
    """Streamable HTTP: what counts across replicas is the session's GET stream (the id itself
    is valid on every replica and holds nothing); a second GET for the session replaces the
    first, and the key keeps one share for it."""
    init = await api.mcp(initialize())
    session = {
        "Mcp-Session-Id": init.headers["Mcp-Session-Id"],
        "MCP-Protocol-Version": "2025-06-18",
    }
    headers = SSE | session | {"Authorization": f"Bearer {KEY}"}
    first = await SseReader.open(replica_b.base_url + "/mcp", headers=headers)  # another replica
    assert first.code == 200
    assert list(stream_leases(redis_server).values()) == [1]
    second = await SseReader.open(replica_b.base_url + "/mcp", headers=headers)
    assert second.code == 200
    assert await first.closed()
    assert await until(lambda: list(stream_leases(redis_server).values()) == [1])
    # Sessions themselves are not counted: more initializations than the share are served.
    for n in range(3):
        assert (await replica_b.mcp(initialize(n))).code == 200
    second.close()


@with_settings(auth_enabled=False)
@pytest.mark.gen_test(timeout=30)
async def test_without_auth_a_stream_still_fails_closed_when_redis_is_down(api, redis_server):
    """Without keys nothing checks the limiter: the stream's own share is what answers 503."""
    redis_server.stop()
    try:
        for path in ("/mcp/sse", "/mcp"):
            refusal = await SseReader.open(api.base_url + path, headers=SSE)
            assert refusal.code == 503 and refusal.headers["retry-after"] == "5"
            refusal.close()
        response = await api.request("/mcp", headers=SSE, key=None)
        assert response.code == 503
        assert body_json(response)["error"]["message"] == (
            "Event streams are temporarily unavailable; retry shortly"
        )
    finally:
        redis_server.start()
    reader = await SseReader.open(api.base_url + "/mcp/sse", headers=SSE)
    assert reader.code == 200 and (await reader.next())[0] == "endpoint"
    reader.close()
