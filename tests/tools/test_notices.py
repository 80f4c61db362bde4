"""A truncated result also reaches the client as a log line, when the client asked for logs:
through the official SDK client, under 2025 (logging/setLevel) and 2026-07-28 (_meta logLevel)."""

from __future__ import annotations

import asyncio
import contextlib

import httpx2
import pytest
from mcp.client import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from ..conftest import KEY, with_settings

FILE = {"owner": "northwind", "repo": "lighthouse", "path": "README.md"}


@contextlib.asynccontextmanager
async def http(base_url):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield streamable_http_client(base_url + "/mcp", http_client=client)


@with_settings(max_result_bytes=400)
@pytest.mark.gen_test(timeout=30)
async def test_truncation_is_logged_to_a_2025_client_that_set_a_level(base_url, api):
    received = []

    async def on_log(params):
        received.append(params)

    async with http(base_url) as transport, transport as (read, write):
        async with ClientSession(read, write, logging_callback=on_log) as session:
            await session.initialize()
            quiet = await session.call_tool("get_file_contents", FILE)
            assert quiet.structured_content["truncated"] is True
            await asyncio.sleep(0.1)
            assert received == []  # no level set: no log lines
            await session.set_logging_level("info")
            await session.call_tool("get_file_contents", FILE)
            await asyncio.sleep(0.1)
    [line] = received
    assert line.level == "notice" and line.logger == "get_file_contents"
    assert "cut" in line.data["message"]


@with_settings(max_result_bytes=400)
@pytest.mark.gen_test(timeout=30)
async def test_truncation_is_logged_to_a_2026_client_only_with_a_log_level(base_url, api):
    for level, expected in ((None, 0), ("warning", 0), ("debug", 1)):
        received = []

        async def on_log(params, received=received):
            received.append(params)

        async with http(base_url) as transport:
            async with Client(
                transport, mode="2026-07-28", log_level=level, logging_callback=on_log
            ) as client:
                result = await client.call_tool("get_file_contents", FILE)
                assert result.structured_content["truncated"] is True
                await asyncio.sleep(0.1)
        assert len(received) == expected, level


@pytest.mark.gen_test(timeout=30)
async def test_a_gitea_retry_is_logged_before_the_result(base_url, api, gitea):
    received = []

    async def on_log(params):
        received.append(params)

    async with http(base_url) as transport, transport as (read, write):
        async with ClientSession(read, write, logging_callback=on_log) as session:
            await session.initialize()
            await session.set_logging_level("warning")
            gitea.faults.add("status", status=503, times=1)
            result = await session.call_tool(
                "get_repository", {"owner": "northwind", "repo": "lighthouse"}
            )
            assert not result.is_error  # the retry succeeded
            await asyncio.sleep(0.1)
    [line] = received
    assert line.level == "warning" and line.logger == "get_repository"
    assert "Gitea did not answer" in line.data["message"] and "retrying" in line.data["message"]
