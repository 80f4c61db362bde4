"""The failed-auth limiter shared in a real Redis, through the running server(s)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from aegis_tornado.state.limiter import SharedFailedAuthLimiter
from aegis_tornado.state.store import StateStore, StateUnavailable

from ..conftest import KEY, UNKNOWN_KEY, body_json, with_settings


@with_settings(max_auth_failures=4, auth_failure_window=1.0)
@pytest.mark.gen_test(timeout=20)
async def test_failures_spread_over_two_replicas_block_on_both(api, replica_b, logs):
    for replica in (api, replica_b, api):
        assert (await replica.request("/mcp/tools", key=UNKNOWN_KEY)).code == 401
    # The fourth failure, on B, is the one that blocks: A sees it at once.
    assert (await replica_b.request("/mcp/tools", key=UNKNOWN_KEY)).code == 401
    for replica in (api, replica_b):
        blocked = await replica.request("/mcp/tools", key=KEY)  # a good key is refused too
        assert blocked.code == 429
        assert body_json(blocked)["message"].startswith("Too many failed authentication")
        assert 1 <= int(blocked.headers["Retry-After"]) <= 1
    await asyncio.sleep(1.1)  # the oldest failure leaves the window
    assert (await api.request("/mcp/tools", key=KEY)).code == 200
    assert (await replica_b.request("/mcp/tools", key=KEY)).code == 200
    # Audited by the replica that saw it: A logged its two failures and its refusal.
    reasons = [r["reason"] for r in logs.audit("access_denied")]
    assert reasons.count("invalid_api_key") >= 2 and "rate_limited" in reasons


@with_settings(max_auth_failures=3, auth_failure_window=60.0)
@pytest.mark.gen_test(timeout=20)
async def test_same_decisions_as_the_in_process_limiter(api, logs):
    for _ in range(2):
        assert (await api.request("/mcp/tools", key=UNKNOWN_KEY)).code == 401
    for _ in range(5):  # successes neither count nor reset
        assert (await api.request("/mcp/tools", key=KEY)).code == 200
    assert (await api.request("/mcp/tools", key=UNKNOWN_KEY)).code == 401
    blocked = await api.request("/mcp/tools", key=None)
    assert blocked.code == 429
    assert 55 <= int(blocked.headers["Retry-After"]) <= 60
    [exceeded] = logs.audit("auth_rate_limit_exceeded")
    assert exceeded["failures"] == 3 and exceeded["window"] == 60


@with_settings(max_auth_failures=2, auth_failure_window=60.0, auth_ipv6_prefix=64)
@pytest.mark.gen_test(timeout=20)
async def test_keys_are_namespaced_and_expire(api, redis_server):
    for _ in range(3):
        await api.request("/mcp/tools", key=UNKNOWN_KEY)
    client = redis_server.client()
    keys = sorted(client.keys("*"))
    # The client's failures, and the metrics' two indexes (tracked and blocked clients).
    assert keys == [b"aegis:authfail:127.0.0.1", b"aegis:limiter:blocked", b"aegis:limiter:tracked"]
    assert all(0 < client.pttl(key) <= 60_000 for key in keys)
    assert client.zcard(keys[0]) == 2  # only the most recent max_failures are kept
    assert client.zrange(keys[1], 0, -1) == client.zrange(keys[2], 0, -1) == [b"127.0.0.1"]


@with_settings(max_auth_failures=3, auth_failure_window=60.0)
@pytest.mark.gen_test(timeout=30)
async def test_redis_down_fails_closed_and_recovers(api, redis_server, logs):
    assert (await api.request("/health", key=None)).code == 200
    assert body_json(await api.request("/health", key=None))["state"] == {
        "store": "redis",
        "available": True,
    }
    redis_server.stop()
    try:
        for key in (KEY, UNKNOWN_KEY):
            refused = await api.request("/mcp/tools", key=key)
            assert refused.code == 503, refused.body
            assert int(refused.headers["Retry-After"]) >= 1
            assert "temporarily unavailable" in body_json(refused)["message"]
            assert b"Traceback" not in refused.body and b"redis" not in refused.body.lower()
        health = await api.request("/health", key=None)
        assert health.code == 200
        assert body_json(health)["status"] == "degraded"
        assert body_json(health)["state"]["available"] is False
        denied = [r for r in logs.audit("access_denied") if r["reason"] == "state_unavailable"]
        assert len(denied) == 2
        # One log line for the outage, not one per request.
        outages = [r for r in logs.stdout() if r.get("event") == "state_store_unavailable"]
        assert len(outages) == 1
    finally:
        redis_server.start()
    # Reconnected by the next request, nothing to restart.
    assert (await api.request("/mcp/tools", key=KEY)).code == 200
    assert body_json(await api.request("/health", key=None))["status"] == "ok"


@pytest.mark.gen_test(timeout=20)
async def test_a_redis_that_never_answers_costs_bounded_time():
    # A socket that accepts connections (the kernel's backlog) and never replies: the failure
    # a firewall dropping packets or a hung Redis produces, worse than a refused connection.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    store = StateStore(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
    limiter = SharedFailedAuthLimiter(store, 3, 60.0)
    try:
        started = time.monotonic()
        assert await store.ping() is False
        assert time.monotonic() - started < 1.5  # /health: well inside a health check's 3 s
        started = time.monotonic()
        with pytest.raises(StateUnavailable):
            await limiter.retry_after("203.0.113.9")
        assert time.monotonic() - started < 5  # the 503 comes in bounded time
    finally:
        await store.close()
        silent.close()
