"""Sessions and event streams under abuse: thousands opened and never closed stay capped with
the oldest evicted; streams abandoned mid-way free everything promptly, whatever the keepalive.

Complements tests/web/test_streamable.py and test_legacy_sse.py (a few sessions, keepalive
0.2 s): here volume, and a keepalive long enough that only disconnect detection can help.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from aegis_tornado.mcp.registry import Tool

from .. import support
from ..conftest import KEY, OTHER_KEY, body_json, with_settings
from ..sse_reader import SseReader
from ..support import rpc
from .conftest import RawConnection, drained, request_bytes, wait_until

SSE = {"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"}


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


@with_settings(max_sessions=5, max_calls_per_key=1000)  # the session's own bound, not the key's
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
    reader = await support.post_mcp(
        base_url,
        KEY,
        rpc(
            "tools/call",
            9,
            name="slow",
            arguments={"seconds": 20, "steps": 40, "label": "mid-stream"},
            _meta={"progressToken": "p"},
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


# --- fair shares between keys -----------------------------------------------------------


async def _big(arguments, context):
    return {"text": "x" * arguments["size"]}


@pytest.fixture
def registry():
    """The transports' test tools, plus ``big``: a result of any size, for memory tests."""
    tools = support.demo_tools()
    schema = {
        "type": "object",
        "properties": {"size": {"type": "integer", "minimum": 0, "maximum": 20_000_000}},
        "required": ["size"],
    }
    tools._tools["big"] = Tool("big", "Big", "A result of the size asked for.", schema, _big)
    return tools


@with_settings(max_sessions=5, max_sessions_per_key=5)
@pytest.mark.gen_test(timeout=30)
async def test_another_key_opening_streams_does_not_end_a_keys_session(api, ctx, base_url):
    # The red-team's figures: MAX_SESSIONS=5, K2 opening 5 streams ended K1's legacy session.
    k1, endpoint = await open_legacy(base_url)
    k2_headers = {"Authorization": f"Bearer {OTHER_KEY}", "Accept": "text/event-stream"}
    k2 = [await SseReader.open(base_url + "/mcp/sse", headers=k2_headers) for _ in range(3)]
    k2 += [await SseReader.open(base_url + "/mcp", headers=k2_headers) for _ in range(2)]
    assert len(ctx.requests.streams) == 5
    response = await api.request(endpoint, "POST", json_body=rpc("ping", "k1-alive"))
    assert response.code == 202
    event, data = await k1.next()
    assert event == "message" and json.loads(data)["id"] == "k1-alive"
    # A key with nothing of its own to give up is refused rather than pushing K1 out.
    k3 = await SseReader.open(base_url + "/mcp", headers=SSE | {"Authorization": "Bearer x"})
    assert k3.code == 401
    k3.close()
    for reader in [k1, *k2]:
        reader.close()


@with_settings(max_sessions=4, max_sessions_per_key=2)
@pytest.mark.gen_test(timeout=30)
async def test_a_key_past_its_share_of_streams_gives_up_its_own_oldest(api, ctx, base_url):
    k1, _ = await open_legacy(base_url)
    k2_headers = {"Authorization": f"Bearer {OTHER_KEY}", "Accept": "text/event-stream"}
    k2 = [await SseReader.open(base_url + "/mcp", headers=k2_headers) for _ in range(4)]
    assert await wait_until(lambda: len(ctx.requests.streams) == 3)
    assert (await k2[0].next())[0] == "<closed>"  # K2's own oldest was ended
    assert len(ctx.legacy_sessions) == 1  # K1 keeps its session
    for reader in [k1, *k2]:
        reader.close()


@with_settings(max_calls_per_key=4)
@pytest.mark.gen_test(timeout=30)
async def test_one_keys_burst_gets_429_beyond_its_share_and_does_not_starve_another(api, ctx):
    # The red-team's figures: hundreds of parallel calls from one key made another key's
    # list_issues take 13.7-26.6 s. Here one key's burst runs at most 4 calls at once.
    def slow(n):
        return api.request(
            "/mcp/tool/call",
            "POST",
            json_body={"tool": "slow", "arguments": {"seconds": 2, "steps": 1, "label": f"b{n}"}},
        )

    burst = asyncio.gather(*(slow(n) for n in range(40)))
    assert await wait_until(lambda: ctx.calls.in_use() == 4)
    started = time.monotonic()
    other = await api.request(
        "/mcp/tool/call",
        "POST",
        key=OTHER_KEY,
        json_body={"tool": "echo", "arguments": {"text": "still served"}},
    )
    # Answered while the burst's calls (2 s each) are still running: it waited for no slot.
    assert other.code == 200 and time.monotonic() - started < 1.0
    assert ctx.calls.in_use() == 4
    responses = await burst
    codes = [r.code for r in responses]
    assert codes.count(200) == 4 and codes.count(429) == 36
    assert all(r.headers["Retry-After"] == "1" for r in responses if r.code == 429)
    assert ctx.calls.in_use() == 0


@with_settings(max_calls_per_key=3, max_batch_result_bytes=10_000)
@pytest.mark.gen_test(timeout=30)
async def test_a_batch_is_bounded_in_calls_and_in_bytes(api, ctx):
    batch = [rpc("tools/call", n, name="big", arguments={"size": 4000}) for n in range(6)]
    response = await api.mcp(batch, headers={"MCP-Protocol-Version": "2025-03-26"})
    assert response.code == 200 and len(response.body) < 10_000 + 1000
    replies = {r["id"]: r for r in body_json(response)}
    assert len(replies) == 6
    ran = [r for r in replies.values() if "result" in r]
    assert 1 <= len(ran) <= 2  # three admitted, then the byte budget
    assert all(r["error"]["code"] == -32000 for r in replies.values() if "error" in r)
    assert ctx.calls.in_use() == 0


def _not_reading(port: int, body: bytes) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        request_bytes("POST", "/mcp/tool/call", {"Content-Type": "application/json"}, body)
    )
    return sock


@with_settings(max_queued_bytes=16_000_000, http_send_timeout=1.5, max_calls_per_key=100)
@pytest.mark.gen_test(timeout=60)
async def test_clients_that_do_not_read_hold_bounded_memory_and_are_dropped(api, ctx, port):
    # The red-team's figures: 60 clients sending 4.8 MB requests without reading the replies
    # raised server memory by 164 MB.
    body = json.dumps({"tool": "big", "arguments": {"size": 4_000_000}}).encode()
    peak = 0
    sockets = []
    for _ in range(60):
        sockets.append(_not_reading(port, body))
        await asyncio.sleep(0.01)
        peak = max(peak, ctx.requests.queued_bytes)
    assert await wait_until(lambda: ctx.requests.queued_bytes > 0)
    peak = max(peak, ctx.requests.queued_bytes)
    assert peak <= 16_000_000 + 4_100_000  # the cap, overshot by at most one reply
    # Beyond the cap, new calls are refused until the slow readers are gone...
    refused = await api.request(
        "/mcp/tool/call", "POST", json_body={"tool": "echo", "arguments": {"text": "x"}}
    )
    assert refused.code == 429 and refused.headers["Retry-After"] == "1"
    # ...which they are after HTTP_SEND_TIMEOUT: their connections are dropped.
    assert await wait_until(lambda: ctx.requests.queued_bytes == 0, timeout=5)
    for sock in sockets:
        sock.close()
    ok = await api.request(
        "/mcp/tool/call", "POST", json_body={"tool": "echo", "arguments": {"text": "x"}}
    )
    assert ok.code == 200
