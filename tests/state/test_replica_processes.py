"""Two product processes (the real entrypoint, ``python -m aegis_tornado``) on one Redis."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from ..conftest import KEY, UNKNOWN_KEY, Api
from ..web.test_legacy_sse import endpoint_of, open_stream, rpc
from .conftest import two_replicas

pytestmark = pytest.mark.slow


def get(base_url: str, path: str, key: str | None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(base_url + path)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def replicas(tmp_path, redis_url):
    with two_replicas(
        tmp_path,
        "aegis_tornado",
        STATE_URL=redis_url,
        MAX_AUTH_FAILURES="4",
        AUTH_FAILURE_WINDOW="60",
    ) as started:
        yield started


def test_failures_spread_over_two_processes_block_the_client_on_both(replicas):
    a, b = replicas
    for server in (a, b, a, b):
        assert get(server.base_url, "/mcp/tools", UNKNOWN_KEY)[0] == 401
    for server in (a, b):
        code, headers, _ = get(server.base_url, "/mcp/tools", KEY)
        assert code == 429
        assert 55 <= int(headers["Retry-After"]) <= 60
    # Each process audited what it saw: two failures each, the block by the one that made it.
    # (The audit file is written by a background writer: wait for it.)
    deadline = time.monotonic() + 10
    while True:
        exceeded = [
            r for s in (a, b) for r in s.audit() if r["event"] == "auth_rate_limit_exceeded"
        ]
        if exceeded or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(exceeded) == 1 and exceeded[0]["failures"] == 4
    for server in (a, b):
        health = json.loads(get(server.base_url, "/health", None)[2])
        assert health["state"] == {"store": "redis", "available": True}


def test_a_client_under_the_limit_on_each_process_alone_is_not_blocked_elsewhere(replicas):
    a, b = replicas
    for _ in range(3):
        assert get(a.base_url, "/mcp/tools", UNKNOWN_KEY)[0] == 401
    assert get(b.base_url, "/mcp/tools", KEY)[0] == 200  # 3 < 4: not blocked anywhere
    assert get(b.base_url, "/mcp/tools", UNKNOWN_KEY)[0] == 401
    assert get(a.base_url, "/mcp/tools", KEY)[0] == 429


@pytest.mark.gen_test(timeout=30)
async def test_a_legacy_sse_session_opened_on_a_answers_a_post_sent_to_b(replicas):
    a, b = replicas
    reader = await open_stream(a.base_url)
    endpoint = await endpoint_of(reader)
    via_b = Api(b.base_url)
    posted = await via_b.request(
        endpoint, "POST", json_body=rpc("initialize", protocolVersion="2025-06-18")
    )
    assert posted.code == 202
    assert (await reader.next_json(10))["result"]["protocolVersion"] == "2025-06-18"
    await via_b.request(endpoint, "POST", json_body=rpc("notifications/initialized", None))
    await via_b.request(endpoint, "POST", json_body=rpc("tools/list", 2))
    listed = await reader.next_json(10)
    assert listed["id"] == 2 and len(listed["result"]["tools"]) > 5
    reader.close()


def test_killing_redis_mid_run_fails_closed_on_both_then_recovers(replicas, redis_server):
    a, b = replicas
    for server in (a, b):
        assert get(server.base_url, "/mcp/tools", KEY)[0] == 200
    redis_server.proc.kill()  # not a clean shutdown
    redis_server.proc.wait()
    redis_server.proc = None
    try:
        for server in (a, b):
            code, headers, body = get(server.base_url, "/mcp/tools", KEY)
            assert code == 503 and int(headers["Retry-After"]) >= 1
            assert b"Traceback" not in body
            health = json.loads(get(server.base_url, "/health", None)[2])
            assert health["status"] == "degraded"
    finally:
        redis_server.start()
    for server in (a, b):
        assert get(server.base_url, "/mcp/tools", KEY)[0] == 200
        assert json.loads(get(server.base_url, "/health", None)[2])["status"] == "ok"
