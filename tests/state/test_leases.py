"""The lease mechanism itself (``state/leases.py``) on a real Redis: shares per key, handing a
lease over, and what a renewal does with a lease Redis lost (call slots: gone; streams: put
back)."""

from __future__ import annotations

import asyncio

import pytest

from aegis_tornado.state.leases import SharedLeases
from aegis_tornado.state.store import StateStore


async def until(condition, timeout: float = 5.0) -> bool:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


@pytest.mark.gen_test(timeout=20)
async def test_shares_per_key_and_a_handed_over_lease_is_given_back_once(redis_url, redis_server):
    store = StateStore(redis_url)
    leases = SharedLeases(store, "streams", 2, 30.0, restore=True)
    client = redis_server.client()
    try:
        first = await leases.take_lease("k1")
        second = await leases.take_lease("k1")
        assert first is not None and second is not None
        assert await leases.take_lease("k1") is None  # the key's two shares are taken
        assert await leases.take_lease("k2") is not None  # another key's are its own
        assert leases.held("k1") == 2 and leases.held() == 3
        handed = first.transfer()
        first.release()  # the old holder's release no longer gives it back
        await asyncio.sleep(0.1)
        assert client.zcard("aegis:streams:k1") == 2 and leases.held("k1") == 2
        handed.release()
        handed.release()  # idempotent
        assert await until(lambda: client.zcard("aegis:streams:k1") == 1)
        assert leases.held("k1") == 1
        assert await leases.take_lease("k1") is not None
    finally:
        await leases.close()
        await store.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_lease_redis_lost_is_put_back_for_streams_and_not_for_call_slots(
    redis_url, redis_server
):
    store = StateStore(redis_url)
    streams = SharedLeases(store, "streams", 2, 1.5, restore=True)
    calls = SharedLeases(store, "calls", 2, 1.5)
    client = redis_server.client()
    try:
        stream = await streams.take_lease("k")
        call = await calls.take_lease("k")
        assert stream is not None and call is not None
        client.flushall()  # as a Redis restarted without persistence
        # The next renewal (every 0.5 s) puts the open stream's share back, not the call's.
        assert await until(lambda: client.zcard("aegis:streams:k") == 1)
        await asyncio.sleep(0.6)
        assert client.zcard("aegis:calls:k") == 0
        assert 0 < client.pttl("aegis:streams:k") <= 1500
        stream.release()
        call.release()
        assert await until(lambda: client.exists("aegis:streams:k") == 0)
    finally:
        await streams.close()
        await calls.close()
        await store.close()
