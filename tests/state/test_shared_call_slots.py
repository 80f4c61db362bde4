"""MAX_CALLS_PER_KEY across two product processes on one Redis: the cap is the key's in all."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request

import pytest
import redis

from ..conftest import KEY, OTHER_KEY, body_json, with_settings
from ..web.test_streamable import initialize
from .conftest import two_replicas


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
    with two_replicas(
        tmp_path,
        "tests.hardening.serve_test_tools",
        STATE_URL=redis_url,
        MAX_CALLS_PER_KEY="2",
        CALL_SLOT_LEASE="3",
    ) as started:
        yield started


@pytest.mark.slow
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


def wait_for_slots(redis_url: str, count: int) -> bytes:
    """The one slot key, once it holds ``count`` slots (watched in Redis, not probed through a
    replica: a probe could take the slot a holder wanted)."""
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            keys = list(client.scan_iter("aegis:calls:*"))
            if keys and client.zcard(keys[0]) == count:
                assert 0 < client.pttl(keys[0]) <= 3000  # the lease: it expires on its own
                return keys[0]
            time.sleep(0.05)
    finally:
        client.close()
    raise AssertionError(f"never {count} slots taken")


@pytest.mark.slow
def test_the_cap_is_per_key(replicas, redis_url):
    a, b = replicas
    holders = [threading.Thread(target=call_slow, args=(s.base_url, 2)) for s in (a, b)]
    for thread in holders:
        thread.start()
    wait_for_slots(redis_url, 2)
    assert call_slow(a.base_url, 0)[0] == 429
    assert call_slow(b.base_url, 0, OTHER_KEY)[0] == 200  # another key has its own slots
    for thread in holders:
        thread.join(10)
    assert call_slow(b.base_url, 0)[0] == 200


@pytest.mark.slow
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
    wait_for_slots(redis_url, 2)
    assert call_slow(b.base_url, 0)[0] == 429
    # A holds both slots, and renews them past their 3 s lease while its calls run.
    time.sleep(4)
    assert call_slow(b.base_url, 0)[0] == 429
    a.kill()  # dies holding them: nobody releases them
    killed_at = time.monotonic()
    while call_slow(b.base_url, 0)[0] == 429:
        assert time.monotonic() - killed_at < 8, "a dead replica's slots never expired"
        time.sleep(0.2)
    assert call_slow(b.base_url, 0)[0] == 200


# --- in one process: two replicas (``replica_b``) on the same Redis, every transport ---------


def tool_call(id_: int, name: str, **arguments) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": id_,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


@with_settings(max_calls_per_key=2)
@pytest.mark.gen_test(timeout=30)
async def test_a_batch_on_b_gets_only_the_slot_a_left_free(api, replica_b, redis_server):
    held = asyncio.ensure_future(
        api.request(
            "/mcp/tool/call",
            "POST",
            json_body={"tool": "slow", "arguments": {"seconds": 1.5, "steps": 1}},
        )
    )
    client = redis_server.client()
    for _ in range(100):
        if client.keys("aegis:calls:*"):
            break
        await asyncio.sleep(0.02)
    [key] = client.keys("aegis:calls:*")
    assert KEY.encode() not in key and 0 < client.pttl(key) <= 30_000
    session_id, _ = await initialize(replica_b, version="2025-03-26")
    headers = {"Mcp-Session-Id": session_id, "MCP-Protocol-Version": "2025-03-26"}
    batch = [tool_call(i, "echo", text=str(i)) for i in (1, 2, 3)]
    replies = body_json(await replica_b.mcp(batch, headers=headers))
    ran = [r for r in replies if "result" in r]
    refused = [r for r in replies if "error" in r]
    assert len(ran) == 1 and len(refused) == 2  # A holds one of the key's two slots
    assert all(r["error"]["code"] == -32000 for r in refused)
    assert (await held).code == 200
    for _ in range(100):  # the releases are sent as the requests finish
        if not client.keys("aegis:calls:*"):
            break
        await asyncio.sleep(0.02)
    assert client.keys("aegis:calls:*") == []
    replies = body_json(await replica_b.mcp(batch, headers=headers))
    assert all("result" in r for r in replies[:2]) and "error" in replies[2]
