"""DELETE /mcp ends a Streamable HTTP session on every replica (STATE_URL): two replicas in
this process on one real Redis (``api`` is A, ``replica_b`` is B); the same with two processes
is in ``test_session_ends_processes.py``."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import redis

from ..conftest import KEY, OTHER_KEY, Api, body_json, with_settings
from ..sse_reader import SseReader
from ..support import initialize_request, rpc

VERSION = {"MCP-Protocol-Version": "2025-06-18"}


async def open_session(replica: Api, key: str = KEY) -> str:
    response = await replica.mcp(initialize_request(), key=key)
    assert response.code == 200, response.body
    return response.headers["Mcp-Session-Id"]


async def ping(replica: Api, session_id: str, key: str = KEY):
    return await replica.mcp(rpc("ping"), headers=VERSION | {"Mcp-Session-Id": session_id}, key=key)


async def delete(replica: Api, session_id: str, key: str = KEY):
    return await replica.request(
        "/mcp", "DELETE", key=key, headers=VERSION | {"Mcp-Session-Id": session_id}
    )


async def session_stream(replica: Api, session_id: str) -> SseReader:
    """The session's GET /mcp stream."""
    headers = {
        "Accept": "text/event-stream",
        "Authorization": f"Bearer {KEY}",
        "Mcp-Session-Id": session_id,
        **VERSION,
    }
    reader = await SseReader.open(replica.base_url + "/mcp", headers=headers)
    assert reader.code == 200
    return reader


def markers(client: redis.Redis) -> dict[bytes, int]:
    """The ended-session markers and their TTLs (seconds)."""
    return {key: client.ttl(key) for key in client.scan_iter("aegis:session-ended:*")}


def marker_of(session_id: str) -> bytes:
    return b"aegis:session-ended:" + hashlib.sha256(session_id.encode()).hexdigest().encode()


def subscribers(client: redis.Redis) -> int:
    [(_, count)] = client.pubsub_numsub("aegis:session-ended")
    return count


async def until_code(request, code: int, timeout: float = 5.0) -> int:
    """Repeat ``request()`` until it answers ``code``; the last code seen."""
    for _ in range(int(timeout / 0.05)):
        response = await request()
        if response.code == code:
            return code
        await asyncio.sleep(0.05)
    return (await request()).code


@with_settings(session_ttl=600)
@pytest.mark.gen_test(timeout=30)
async def test_a_session_deleted_on_a_is_ended_on_b_cached_or_not(api, replica_b, redis_server):
    cached = await open_session(api)
    assert (await ping(replica_b, cached)).code == 200  # rebuilt on B, now in its cache
    stream = await session_stream(replica_b, cached)
    unseen = await open_session(api)  # B never saw this one
    assert (await ping(api, unseen)).code == 200

    assert (await delete(api, cached)).code == 204
    # B drops it at once: its GET stream ends, and the id is refused from then on.
    assert await stream.closed(timeout=5)
    refused = await ping(replica_b, cached)
    assert refused.code == 404
    assert body_json(refused)["error"]["code"] == -32001

    assert (await delete(api, unseen)).code == 204
    assert (await ping(replica_b, unseen)).code == 404  # the marker, read before a rebuild
    assert (await ping(api, unseen)).code == 404

    # Already ended on A: a DELETE on B is a 404 too (by B's memory and by the marker).
    assert (await delete(replica_b, cached)).code == 404
    assert (await delete(replica_b, unseen)).code == 404

    # One marker per ended id, named by its digest (never the id), expiring with the id.
    found = markers(redis_server.client())
    assert set(found) == {marker_of(cached), marker_of(unseen)}
    for key, ttl in found.items():
        assert cached.encode() not in key and unseen.encode() not in key
        assert 590 <= ttl <= 600

    # Another session of the same key, and another key's, are untouched.
    other = await open_session(api, OTHER_KEY)
    assert (await ping(replica_b, other, OTHER_KEY)).code == 200
    stream.close()


@pytest.mark.gen_test(timeout=30)
async def test_deleted_on_b_ends_it_on_a_and_only_one_of_two_deletes_ends_it(api, replica_b):
    session_id = await open_session(api)
    assert (await ping(replica_b, session_id)).code == 200
    assert (await delete(replica_b, session_id)).code == 204
    # A created it and still caches it: the message drops it there.
    assert await until_code(lambda: ping(api, session_id), 404) == 404
    assert (await delete(api, session_id)).code == 404

    # Two DELETEs of one id at once, one on each replica: exactly one ends it.
    racing = await open_session(api)
    assert (await ping(replica_b, racing)).code == 200
    codes = sorted(
        r.code for r in await asyncio.gather(delete(api, racing), delete(replica_b, racing))
    )
    assert codes == [204, 404]

    # Another key cannot end it, on either replica (and learns nothing: the same 404).
    third = await open_session(api)
    for replica in (api, replica_b):
        assert (await delete(replica, third, OTHER_KEY)).code == 404
    assert (await ping(replica_b, third)).code == 200


@pytest.mark.gen_test(timeout=30)
async def test_an_end_missed_while_the_subscription_was_down_is_caught_up(
    api, replica_b, redis_server
):
    """Pub/sub drops what is published while a subscriber is disconnected: when B subscribes
    again it reads the markers of the sessions it caches."""
    session_id, heard = await open_session(api), await open_session(api)
    for cached in (session_id, heard):
        assert (await ping(replica_b, cached)).code == 200
    # B follows the channel and reads it (an end it hears of live).
    assert (await delete(api, heard)).code == 204
    assert await until_code(lambda: ping(replica_b, heard), 404) == 404
    client = redis_server.client()
    assert subscribers(client) == 2  # A and B
    # An end B did not hear of (its message lost while its subscription was down): the
    # marker a DELETE leaves, then every subscriber's connection cut.
    client.set(marker_of(session_id), b"1", ex=60)
    assert client.client_kill_filter(_type="pubsub") >= 1
    assert await until_code(lambda: ping(replica_b, session_id), 404) == 404


def restrict_default_user(client: redis.Redis) -> None:
    """Redis refuses the session markers (and only them) to the replicas: the limiter and
    the other shared state still answer, so the request reaches the session check."""
    patterns = ["~aegis:authfail:*", "~aegis:limiter:*", "~aegis:streams:*", "~aegis:calls:*"]
    client.execute_command("ACL", "SETUSER", "default", "resetkeys", *patterns)


@pytest.mark.gen_test(timeout=30)
async def test_redis_refusing_the_check_fails_closed_with_503_and_recovers(
    api, replica_b, redis_server
):
    session_id = await open_session(api)
    client = redis_server.client()
    restrict_default_user(client)
    try:
        # B must rebuild it and cannot read the marker: 503, never served unchecked.
        refused = await ping(replica_b, session_id)
        assert refused.code == 503, refused.body
        assert refused.headers["Retry-After"] == "5"
        assert body_json(refused)["error"]["message"].startswith("Sessions are temporarily")
        # A DELETE that cannot be recorded for every replica ends nothing anywhere.
        failed = await delete(api, session_id)
        assert failed.code == 503 and failed.headers["Retry-After"] == "5"
        assert (await ping(api, session_id)).code == 200  # cached on A: no Redis read
    finally:
        client.execute_command("ACL", "SETUSER", "default", "resetkeys", "~*")
    assert (await ping(replica_b, session_id)).code == 200
    assert (await delete(api, session_id)).code == 204
    assert await until_code(lambda: ping(replica_b, session_id), 404) == 404
