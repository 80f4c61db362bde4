"""Sessions and event streams under abuse: thousands opened and never closed stay capped with
the oldest evicted; streams abandoned mid-way free everything promptly, whatever the keepalive.

Complements tests/web/test_streamable.py and test_legacy_sse.py (a few sessions, keepalive
0.2 s): here volume, and a keepalive long enough that only disconnect detection can help.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from .. import support
from ..conftest import KEY, body_json, with_settings
from ..sse_reader import SseReader
from .conftest import RawConnection, drained, request_bytes, wait_until

SSE = {"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"}


def rpc(method, id_=1, **params):
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}


async def open_legacy(base_url: str) -> tuple[SseReader, str]:
    reader = await SseReader.open(base_url + "/mcp/sse", headers=SSE)
    event, endpoint = await reader.next()
    assert event == "endpoint"
    return reader, endpoint


# --- volume: capped, oldest evicted -----------------------------------------------------


@with_settings(max_sessions=50)
@pytest.mark.gen_test(timeout=60)
async def test_thousands_of_sessions_never_closed_stay_capped(api, ctx, port):
    body = json.dumps(rpc("initialize", protocolVersion="2025-06-18", capabilities={})).encode()
    ids = []
    async with RawConnection(port) as conn:  # pipelined, so 2000 cost about a second
        for _batch in range(20):
            await conn.send(
                b"".join(
                    request_bytes("POST", "/mcp", {"Content-Type": "application/json"}, body)
                    for _ in range(100)
                )
            )
            for _ in range(100):
                status, headers, _ = await conn.response()
                assert status == 200
                ids.append(headers["mcp-session-id"])
    assert len(set(ids)) == 2000
    assert len(ctx.sessions) == 50
    newest, oldest = ids[-1], ids[0]
    assert newest in ctx.sessions._sessions and oldest not in ctx.sessions._sessions
    # Ending them all keeps the memory of ended ids bounded too.
    async with RawConnection(port) as conn:
        await conn.send(
            b"".join(request_bytes("DELETE", "/mcp", {"Mcp-Session-Id": i}) for i in ids[:1000])
        )
        for _ in range(1000):
            assert (await conn.response())[0] == 204
    assert len(ctx.sessions._ended) <= 4 * 50


@with_settings(max_sessions=5)
@pytest.mark.gen_test(timeout=30)
async def test_legacy_streams_beyond_the_cap_close_the_oldest(api, ctx, base_url):
    opened = [await open_legacy(base_url) for _ in range(15)]
    assert len(ctx.legacy_sessions) == 5
    for reader, endpoint in opened[:10]:
        assert await reader.closed(), "an evicted session's stream must end"
        assert (await api.request(endpoint, "POST", json_body=rpc("ping"))).code == 404
    for reader, endpoint in opened[10:]:
        assert (await api.request(endpoint, "POST", json_body=rpc("ping"))).code == 202
        assert (await reader.next_json())["result"] == {}
    assert len(ctx.requests.streams) == 5
    for reader, _ in opened:
        reader.close()


@with_settings(max_sessions=5)
@pytest.mark.gen_test(timeout=30)
async def test_standalone_get_streams_are_capped_too(api, ctx, base_url):
    readers = [await SseReader.open(base_url + "/mcp", headers=SSE) for _ in range(15)]
    assert all(r.code == 200 for r in readers)
    assert await wait_until(lambda: len(ctx.requests.streams) == 5)
    for reader in readers[:10]:
        assert await reader.closed()
    for reader in readers:
        reader.close()


@with_settings(max_sessions=5)
@pytest.mark.gen_test(timeout=30)
async def test_a_legacy_session_cannot_queue_unbounded_work(api, ctx, base_url):
    reader, endpoint = await open_legacy(base_url)
    codes = []
    for n in range(300):  # nobody reads the replies; each call takes a while
        response = await api.request(
            endpoint,
            "POST",
            json_body=rpc("tools/call", n, name="slow", arguments={"seconds": 5, "label": f"q{n}"}),
        )
        codes.append(response.code)
    [session] = ctx.legacy_sessions._sessions.values()
    assert len(session.tasks) <= 64
    assert codes.count(202) == len(session.tasks) and 429 in codes
    refused = await api.request(endpoint, "POST", json_body=rpc("ping"))
    assert refused.code == 429 and "Retry-After" in refused.headers
    reader.close()


# --- abandoned streams free everything at once ------------------------------------------


@with_settings(sse_keepalive=30)
@pytest.mark.gen_test(timeout=30)
async def test_an_abandoned_standalone_stream_is_freed_without_waiting_for_a_keepalive(
    api, ctx, base_url
):
    session_id = (await api.mcp(rpc("initialize", protocolVersion="2025-06-18"))).headers[
        "Mcp-Session-Id"
    ]
    reader = await SseReader.open(base_url + "/mcp", headers={**SSE, "Mcp-Session-Id": session_id})
    assert await wait_until(lambda: len(ctx.requests.streams) == 1)
    reader.close()
    assert await wait_until(lambda: drained(ctx), timeout=2)
    assert ctx.sessions._sessions[session_id].stream is None


@with_settings(sse_keepalive=30)
@pytest.mark.gen_test(timeout=30)
async def test_an_abandoned_legacy_stream_cancels_its_calls_at_once(api, ctx, base_url, logs):
    reader, endpoint = await open_legacy(base_url)
    for n in range(3):
        await api.request(
            endpoint,
            "POST",
            json_body=rpc(
                "tools/call", n, name="slow", arguments={"seconds": 20, "label": f"abandoned-{n}"}
            ),
        )
    assert await wait_until(lambda: all(f"abandoned-{n}" in support.STARTED for n in range(3)))
    reader.close()
    assert await wait_until(lambda: drained(ctx), timeout=2)
    assert all(f"abandoned-{n}" in support.CANCELLED for n in range(3))
    await asyncio.sleep(0.05)
    assert [r["reason"] for r in logs.audit("tool_call")] == ["cancelled"] * 3


@with_settings(sse_keepalive=30)
@pytest.mark.gen_test(timeout=30)
async def test_a_call_abandoned_mid_event_stream_is_cancelled_at_once(api, ctx, base_url):
    reader = await SseReader.open(
        base_url + "/mcp",
        method="POST",
        headers={
            "Authorization": f"Bearer {KEY}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        body=json.dumps(
            rpc(
                "tools/call",
                9,
                name="slow",
                arguments={"seconds": 20, "steps": 40, "label": "mid-stream"},
                _meta={"progressToken": "p"},
            )
        ),
    )
    assert (await reader.next_json())["method"] == "notifications/progress"
    reader.close()
    assert await wait_until(lambda: drained(ctx) and "mid-stream" in support.CANCELLED, 2)


@with_settings(sse_keepalive=30, max_sessions=200, max_connections_per_ip=400)
@pytest.mark.gen_test(timeout=60)
async def test_hundreds_of_abandoned_streams_leave_nothing_behind(api, ctx, base_url):
    readers = []
    for _n in range(100):
        readers.append(await SseReader.open(base_url + "/mcp", headers=SSE))
        readers.append((await open_legacy(base_url))[0])
    assert await wait_until(lambda: len(ctx.requests.streams) == 200)
    for reader in readers:
        reader.close()
    assert await wait_until(lambda: drained(ctx), timeout=3)
    # And the server is as good as new.
    response = await api.mcp(rpc("ping", "after"))
    assert body_json(response)["id"] == "after"


@pytest.mark.gen_test
async def test_evicted_legacy_session_ids_are_random_and_unguessable(api, base_url):
    ids = set()
    for _ in range(20):
        reader, endpoint = await open_legacy(base_url)
        ids.add(parse_qs(urlsplit(endpoint).query)["session_id"][0])
        reader.close()
    assert len(ids) == 20 and all(len(i) == 32 for i in ids)
