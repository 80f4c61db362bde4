"""Two product processes on one real Redis: MAX_SESSIONS_PER_KEY and the metrics with
STATE_URL (``python -m tests.hardening.serve_test_tools``: the real entry point, with the test
tools so that a slow call can be in progress while the metrics are scraped)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis

from ..conftest import KEY, OTHER_KEY, UNKNOWN_KEY, Api
from ..hardening.process import ServerProcess
from ..web.test_metrics import Scrape
from .conftest import two_replicas
from .test_shared_call_slots import call_slow
from .test_shared_streams import legacy, standalone

pytestmark = pytest.mark.slow


class Replica:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.base_url = server.base_url
        self.api = Api(server.base_url)
        [line] = [r for r in server.records() if r.get("event") == "metrics_listening"]
        self.metrics = Api(f"http://127.0.0.1:{line['port']}")

    async def scrape(self) -> Scrape:
        response = await self.metrics.request("/metrics", key=None)
        assert response.code == 200, response.body
        return Scrape(response.body.decode())


@pytest.fixture
def replicas(tmp_path, redis_url):
    with two_replicas(
        tmp_path,
        "tests.hardening.serve_test_tools",
        STATE_URL=redis_url,
        MAX_SESSIONS_PER_KEY="2",
        STREAM_LEASE="3",
        SSE_KEEPALIVE="0.3",
        METRICS_PORT="0",
        MAX_AUTH_FAILURES="3",
        AUTH_FAILURE_WINDOW="60",
        TRUSTED_PROXIES="127.0.0.1",
        CLIENT_IP_HEADER="X-Real-IP",
    ) as started:
        yield [Replica(server) for server in started]


def stream_leases(redis_url: str) -> list[int]:
    client = redis.Redis.from_url(redis_url)
    try:
        return [client.zcard(key) for key in client.scan_iter("aegis:streams:*")]
    finally:
        client.close()


async def until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


@pytest.mark.gen_test(timeout=40)
async def test_the_cap_holds_across_two_processes_and_a_closed_stream_frees_its_share(
    replicas, redis_url
):
    a, b = replicas
    a1 = await legacy(a.base_url)
    a2 = await standalone(a.base_url)
    assert a1.code == a2.code == 200
    for opener in (legacy, standalone):
        third = await opener(b.base_url)
        assert third.code == 429 and third.headers["retry-after"] == "5"
        third.close()
    other = await legacy(b.base_url, OTHER_KEY)  # another key's share is its own
    assert other.code == 200
    assert sorted(stream_leases(redis_url)) == [1, 2]
    a1.close()
    assert await until(lambda: sorted(stream_leases(redis_url)) == [1, 1])
    b1 = await standalone(b.base_url)
    assert b1.code == 200
    assert a2.events.empty()  # nothing ended A's other stream
    for reader in (a2, b1, other):
        reader.close()
    assert await until(lambda: stream_leases(redis_url) == [])


@pytest.mark.gen_test(timeout=40)
async def test_a_killed_replicas_streams_free_their_shares_within_the_lease(replicas, redis_url):
    a, b = replicas
    held = [await standalone(a.base_url), await legacy(a.base_url)]
    assert [r.code for r in held] == [200, 200]
    await asyncio.sleep(4)  # past the 3 s lease: A renews its streams' shares while open
    refused = await standalone(b.base_url)
    assert refused.code == 429
    refused.close()
    a.server.kill()  # dies holding both: nobody gives them back
    killed_at = time.monotonic()
    while True:
        reader = await standalone(b.base_url)
        if reader.code == 200:
            break
        reader.close()
        assert time.monotonic() - killed_at < 6, "a dead replica's streams never expired"
        await asyncio.sleep(0.2)
    assert time.monotonic() - killed_at <= 4.5  # the 3 s lease, and the polling
    reader.close()
    for r in held:
        r.close()


@pytest.mark.gen_test(timeout=60)
async def test_redis_killed_refuses_new_streams_keeps_open_ones_and_recovers(
    replicas, redis_server, redis_url
):
    a, b = replicas
    a1 = await standalone(a.base_url)
    assert a1.code == 200
    assert (await b.scrape()).value("aegis_state_store_available") == 1
    redis_server.proc.kill()  # not a clean shutdown
    redis_server.proc.wait()
    redis_server.proc = None
    try:
        refused = await legacy(b.base_url)
        assert refused.code == 503 and int(refused.headers["retry-after"]) >= 1
        refused.close()
        seen = a1.comments
        await asyncio.sleep(1)
        assert a1.comments > seen and a1.events.empty()  # still open, still kept alive
        # The scrape answers within its bound, says Redis is away, and leaves out the
        # limiter's gauges rather than report 0.
        started = time.monotonic()
        scrape = await b.scrape()
        assert time.monotonic() - started < 3
        assert scrape.value("aegis_state_store_available") == 0
        names = {s.name for s in scrape.samples}
        assert "aegis_auth_limiter_blocked_ips" not in names
        assert "aegis_tool_calls_in_progress" in names
    finally:
        redis_server.start()
    # Back, and empty: A puts its open stream's share back at its next renewal.
    assert await until(lambda: stream_leases(redis_url) == [1])
    assert (await b.scrape()).value("aegis_state_store_available") == 1
    b1 = await standalone(b.base_url)
    assert b1.code == 200
    assert stream_leases(redis_url) == [2]
    for reader in (a1, b1):
        reader.close()


@pytest.mark.gen_test(timeout=60)
async def test_metrics_with_state_url_say_what_every_replica_and_this_one_hold(replicas):
    a, b = replicas
    guesser = {"X-Real-IP": "203.0.113.5"}
    for replica in (a, b, a):  # MAX_AUTH_FAILURES=3, spread over both
        refused = await replica.api.request("/mcp/tools", key=UNKNOWN_KEY, headers=guesser)
        assert refused.code == 401
    assert (await b.api.request("/mcp/tools", headers=guesser)).code == 429
    once = await b.api.request("/mcp/tools", key=UNKNOWN_KEY, headers={"X-Real-IP": "2001:db8::1"})
    assert once.code == 401
    # A slow call in progress on A, a stream open on B.
    slow = threading.Thread(target=call_slow, args=(a.base_url, 3))
    slow.start()
    stream = await legacy(b.base_url)
    assert stream.code == 200
    deadline = time.monotonic() + 5
    while (await a.scrape()).value("aegis_tool_calls_in_progress") != 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    scrapes = {"a": await a.scrape(), "b": await b.scrape()}
    for scrape in scrapes.values():
        # The limiter is every replica's: the same on each scrape.
        assert scrape.value("aegis_auth_limiter_tracked_ips") == 2
        assert scrape.value("aegis_auth_limiter_blocked_ips") == 1
        assert scrape.value("aegis_state_store_available") == 1
        for secret in (KEY, OTHER_KEY, UNKNOWN_KEY, KEY[:8], "203.0.113.5", "2001:db8"):
            assert secret not in scrape.text
    # The rest is this replica's own.
    assert scrapes["a"].value("aegis_tool_calls_in_progress") == 1
    assert scrapes["b"].value("aegis_tool_calls_in_progress") == 0
    assert scrapes["a"].value("aegis_event_streams_open") == 0
    assert scrapes["b"].value("aegis_event_streams_open") == 1
    slow.join(10)
    stream.close()
    assert (await a.scrape()).value("aegis_tool_calls_in_progress") == 0
