"""Two product processes (``python -m aegis_tornado``) on one real Redis: a Streamable HTTP
session ended (``DELETE /mcp``) on one replica is ended on the other."""

from __future__ import annotations

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from ..conftest import KEY, Api
from ..hardening.process import ServerProcess
from .test_session_ends import (
    delete,
    marker_of,
    markers,
    open_session,
    ping,
    session_stream,
    until_code,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def replicas(tmp_path, redis_url):
    started = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        started.append(
            ServerProcess(
                tmp_path / name,
                module="aegis_tornado",
                STATE_URL=redis_url,
                SESSION_TTL="600",
                SSE_KEEPALIVE="0.3",
            )
        )
    yield started
    for server in started:
        server.kill()


@pytest.mark.gen_test(timeout=60)
async def test_a_session_deleted_on_a_is_ended_on_b(replicas, redis_server):
    a, b = (Api(server.base_url) for server in replicas)
    cached = await open_session(a)
    assert (await ping(b, cached)).code == 200  # rebuilt on B from its signed id
    stream = await session_stream(b, cached)
    unseen = await open_session(a)

    assert (await delete(a, cached)).code == 204
    assert await stream.closed(timeout=5)  # B's GET stream for it ends
    assert (await ping(b, cached)).code == 404
    assert (await delete(a, unseen)).code == 204
    assert (await ping(b, unseen)).code == 404  # never seen by B: the marker says ended
    for session_id in (cached, unseen):
        assert (await delete(b, session_id)).code == 404

    found = markers(redis_server.client())
    assert set(found) == {marker_of(cached), marker_of(unseen)}
    assert all(590 <= ttl <= 600 for ttl in found.values())
    assert not any(cached.encode() in key or unseen.encode() in key for key in found)
    # Nothing else is in Redis for a session (it is its signed id): no key names an id.
    client = redis_server.client()
    assert not [k for k in client.scan_iter("*") if cached.encode() in k or unseen.encode() in k]
    stream.close()


@pytest.mark.gen_test(timeout=60)
async def test_the_sdk_clients_terminate_on_a_ends_the_session_on_b(replicas):
    a, b = (server.base_url for server in replicas)
    seen: list[str] = []

    async def remember_session(response: httpx2.Response) -> None:
        if "mcp-session-id" in response.headers:
            seen.append(response.headers["mcp-session-id"])

    hooks = {"response": [remember_session]}
    async with httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {KEY}"}, event_hooks=hooks
    ) as http:
        async with streamable_http_client(a + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                assert (await session.list_tools()).tools
                session_id = seen[0]
                assert (await ping(Api(b), session_id)).code == 200
        # Leaving the client sent DELETE /mcp to A (terminate_on_close).
    assert await until_code(lambda: ping(Api(b), session_id), 404) == 404
    assert (await ping(Api(a), session_id)).code == 404


@pytest.mark.gen_test(timeout=90)
async def test_redis_killed_answers_503_and_sessions_recover(replicas, redis_server):
    a, b = (Api(server.base_url) for server in replicas)
    session_id = await open_session(a)
    redis_server.proc.kill()  # not a clean shutdown
    redis_server.proc.wait()
    redis_server.proc = None
    try:
        # B cannot check whether the id was ended (nor the gate its limiter): 503, not served.
        refused = await ping(b, session_id)
        assert refused.code == 503 and refused.headers["Retry-After"] == "5"
        failed = await delete(a, session_id)
        assert failed.code == 503 and failed.headers["Retry-After"] == "5"
    finally:
        redis_server.start()
    # Back (and empty): the session is served on both, and ends on both again.
    assert await until_code(lambda: ping(b, session_id), 200, timeout=10) == 200
    assert (await ping(a, session_id)).code == 200
    assert (await delete(a, session_id)).code == 204
    assert await until_code(lambda: ping(b, session_id), 404) == 404
