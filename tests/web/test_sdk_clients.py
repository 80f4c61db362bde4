"""The official MCP Python SDK client against the running server, on both transports.

Streamable HTTP with the Bearer header; legacy HTTP+SSE with nothing but ``?api_key=`` in the
URL, as ChatGPT's UI connects.
"""

from __future__ import annotations

import asyncio
import contextlib

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from .. import support
from ..conftest import KEY


@contextlib.asynccontextmanager
async def streamable_session(base_url: str, key: str = KEY, **session_kwargs):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
        async with streamable_http_client(base_url + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write, **session_kwargs) as session:
                yield session


@contextlib.asynccontextmanager
async def sse_session(base_url: str, key: str = KEY, **session_kwargs):
    async with sse_client(base_url + f"/mcp/sse?api_key={key}") as (read, write):
        async with ClientSession(read, write, **session_kwargs) as session:
            yield session


TRANSPORTS = {"streamable_http": streamable_session, "sse": sse_session}


@pytest.fixture(params=sorted(TRANSPORTS))
def connect(request):
    return TRANSPORTS[request.param]


@pytest.mark.gen_test(timeout=30)
async def test_initialize_list_call_and_error(connect, base_url, api, logs):
    async with connect(base_url) as session:
        init = await session.initialize()
        assert init.server_info.name == "aegis-gitea-mcp"
        assert init.protocol_version == "2025-11-25"
        assert init.instructions
        tools = await session.list_tools()
        assert {t.name for t in tools.tools} == {"echo", "slow", "fail", "denied", "crash"}
        assert all(t.annotations.read_only_hint for t in tools.tools)

        result = await session.call_tool("echo", {"text": "héllo"})
        assert not result.is_error
        assert result.structured_content == {"text": "héllo"}

        failed = await session.call_tool("fail", {"why": "testing"})
        assert failed.is_error
        assert "It failed as asked: testing" in failed.content[0].text

        invalid = await session.call_tool("echo", {"text": 5})
        assert invalid.is_error and "argument 'text' must be a string" in invalid.content[0].text

        crashed = await session.call_tool("crash", {})
        assert crashed.is_error and "/etc/shadow" not in crashed.content[0].text
        await session.send_ping()
    statuses = [r["status"] for r in logs.audit("tool_call")]
    assert statuses == ["success", "error", "error", "error"]


@pytest.mark.gen_test(timeout=30)
async def test_progress_is_reported_before_the_result(connect, base_url, api):
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with connect(base_url) as session:
        await session.initialize()
        result = await session.call_tool(
            "slow", {"seconds": 0.2, "steps": 3, "label": "p"}, progress_callback=on_progress
        )
        await asyncio.sleep(0.1)  # a notification may be delivered just after the result
    assert result.structured_content == {"done": "p"}
    assert len(seen) >= 1
    progresses = [p for p, _, _ in seen]
    assert progresses == sorted(set(progresses))  # strictly increasing


@pytest.mark.gen_test(timeout=30)
async def test_cancelling_a_slow_call_stops_it(connect, base_url, api, logs):
    label = f"cancel-{connect.__name__}"
    async with connect(base_url) as session:
        await session.initialize()
        with anyio.move_on_after(0.5):
            await session.call_tool("slow", {"seconds": 10, "steps": 10, "label": label})
        for _ in range(50):
            if label in support.CANCELLED:
                break
            await asyncio.sleep(0.05)
        assert label in support.CANCELLED
        # The session keeps working after the cancellation.
        assert (await session.call_tool("echo", {"text": "after"})).structured_content == {
            "text": "after"
        }
    [cancelled] = [r for r in logs.audit("tool_call") if r["tool"] == "slow"]
    assert cancelled["reason"] == "cancelled"


@pytest.mark.gen_test(timeout=30)
async def test_log_messages_reach_a_client_that_set_a_level(connect, base_url, api):
    received = []

    async def on_log(params):
        received.append(params)

    async with connect(base_url, logging_callback=on_log) as session:
        await session.initialize()
        await session.set_logging_level("info")
        await session.call_tool("slow", {"seconds": 0.05, "steps": 2})
        await asyncio.sleep(0.1)
    assert [m.data for m in received] == [{"step": 1}, {"step": 2}]
    assert all(m.logger == "slow" for m in received)


@pytest.mark.gen_test(timeout=30)
async def test_wrong_key_cannot_connect(connect, base_url, api):
    with pytest.raises(Exception):
        async with connect(base_url, key="0" * 64) as session:
            with anyio.fail_after(5):
                await session.initialize()


# --- the SDK's high-level Client in each connect mode ---------------------------------------


@contextlib.asynccontextmanager
async def sdk_client(base_url: str, mode: str, **kwargs):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}) as http:
        transport = streamable_http_client(base_url + "/mcp", http_client=http)
        async with Client(transport, mode=mode, **kwargs) as client:
            yield client


def mcp_requests(logs) -> list[dict]:
    return [
        r for r in logs.stdout() if r.get("event") == "http_request" and r.get("path") == "/mcp"
    ]


@pytest.mark.parametrize(
    "mode, era", [("auto", "2026-07-28"), ("legacy", "2025-11-25"), ("2026-07-28", "2026-07-28")]
)
@pytest.mark.gen_test(timeout=30)
async def test_client_modes_list_and_call_tools(mode, era, base_url, api, logs):
    async with sdk_client(base_url, mode) as client:
        assert client.protocol_version == era
        if mode != "2026-07-28":  # a pinned version adopts a synthesised discover: no probe
            assert client.server_capabilities.tools is not None
        tools = await client.list_tools()
        assert [t.name for t in tools.tools] == ["echo", "slow", "fail", "denied", "crash"]
        result = await client.call_tool("echo", {"text": "héllo"})
        assert not result.is_error and result.structured_content == {"text": "héllo"}
        failed = await client.call_tool("fail", {"why": "testing"})
        assert failed.is_error and "It failed as asked: testing" in failed.content[0].text
    requests = mcp_requests(logs)
    # Every request was answered without an HTTP error: in auto mode the discover probe
    # succeeded (no fallback round trip to initialize), in legacy mode nothing was probed.
    assert requests and all(r["status"] < 400 for r in requests), requests
    assert [r["status"] for r in logs.audit("tool_call")] == ["success", "error"]


@pytest.mark.gen_test(timeout=30)
async def test_auto_mode_never_falls_back_to_initialize(base_url, api, ctx, logs):
    async with sdk_client(base_url, "auto") as client:
        await client.list_tools()
        assert client.session.discover_result is not None
        assert client.session.initialize_result is None
    assert len(ctx.sessions) == 0  # no initialize: no session was issued


@pytest.mark.gen_test(timeout=30)
async def test_modern_progress_and_log_level_on_the_response_stream(base_url, api):
    seen: list[float] = []
    received = []

    async def on_progress(progress, total, message):
        seen.append(progress)

    async def on_log(params):
        received.append(params)

    async with sdk_client(
        base_url, "2026-07-28", log_level="info", logging_callback=on_log
    ) as client:
        result = await client.call_tool(
            "slow", {"seconds": 0.2, "steps": 3, "label": "m"}, progress_callback=on_progress
        )
        await asyncio.sleep(0.1)
    assert result.structured_content == {"done": "m"}
    assert len(seen) >= 3 and seen == sorted(set(seen))
    assert [m.data for m in received] == [{"step": 1}, {"step": 2}, {"step": 3}]


@pytest.mark.gen_test(timeout=30)
async def test_modern_requests_without_a_log_level_get_no_log_lines(base_url, api):
    received = []

    async def on_log(params):
        received.append(params)

    async with sdk_client(base_url, "2026-07-28", logging_callback=on_log) as client:
        await client.call_tool("slow", {"seconds": 0.05, "steps": 2})
        await asyncio.sleep(0.1)
    assert received == []
