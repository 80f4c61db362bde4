"""MAX_CALLS_PER_KEY across two product processes on one Redis: the cap is the key's in all."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
import redis

from ..conftest import KEY, OTHER_KEY
from ..hardening.process import ServerProcess

pytestmark = pytest.mark.slow


def call_slow(base_url: str, seconds: float, key: str = KEY) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"tool": "slow", "arguments": {"seconds": seconds, "steps": 1}}).encode()
    request = urllib.request.Request(base_url + "/mcp/tool/call", data=body, method="POST")
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def in_parallel(calls) -> list[tuple[int, dict[str, str], bytes]]:
    results: list = [None] * len(calls)

    def run(i, call):
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def slot_keys(redis_url: str) -> list[bytes]:
    client = redis.Redis.from_url(redis_url)
    try:
        return sorted(client.scan_iter("aegis:calls:*"))
    finally:
        client.close()


@pytest.fixture
def replicas(tmp_path, redis_url):
    started = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        started.append(
            ServerProcess(
                tmp_path / name,
                module="tests.hardening.serve_test_tools",
                STATE_URL=redis_url,
                MAX_CALLS_PER_KEY="2",
                CALL_SLOT_LEASE="3",
            )
        )
    yield started
    for server in started:
        server.kill()


def test_one_keys_calls_split_over_two_replicas_share_one_cap(replicas, redis_url):
    a, b = replicas
    # Six slow calls of one key, three on each replica, all at once: two run, four are refused.
    results = in_parallel([lambda s=s: call_slow(s.base_url, 2) for s in (a, b, a, b, a, b)])
    codes = sorted(code for code, _, _ in results)
    assert codes == [200, 200, 429, 429, 429, 429], codes
    for code, headers, body in results:
        if code == 429:
            assert int(headers["Retry-After"]) >= 1
            assert b"at most 2 at once" in body
        else:
            assert b'"done"' in body
    # The calls are done: their slots are back, on both replicas, and nothing is left in Redis.
    for server in (a, b):
        assert call_slow(server.base_url, 0)[0] == 200
    deadline = time.monotonic() + 5
    while slot_keys(redis_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slot_keys(redis_url) == []


def test_the_cap_is_per_key(replicas):
    a, b = replicas
    results = in_parallel(
        [
            lambda: call_slow(a.base_url, 1.5),
            lambda: call_slow(b.base_url, 1.5),
            lambda: (time.sleep(0.5), call_slow(a.base_url, 0, OTHER_KEY))[1],
            lambda: (time.sleep(0.5), call_slow(b.base_url, 0))[1],
        ]
    )
    assert [code for code, _, _ in results] == [200, 200, 200, 429]


def test_a_killed_replicas_slots_expire_with_their_lease(replicas, redis_url):
    a, b = replicas

    def hold() -> None:
        try:
            call_slow(a.base_url, 30)
        except OSError:
            pass  # A is killed under it

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for thread in holders:
        thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if call_slow(b.base_url, 0)[0] == 429:
            break
        time.sleep(0.1)
    # A holds both slots, and renews them past their 3 s lease while its calls run.
    time.sleep(4)
    assert call_slow(b.base_url, 0)[0] == 429
    a.kill()  # dies holding them: nobody releases them
    killed_at = time.monotonic()
    while call_slow(b.base_url, 0)[0] == 429:
        assert time.monotonic() - killed_at < 8, "a dead replica's slots never expired"
        time.sleep(0.2)
    assert call_slow(b.base_url, 0)[0] == 200
