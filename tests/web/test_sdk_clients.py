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
