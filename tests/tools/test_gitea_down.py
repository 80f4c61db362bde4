"""Gitea not running at all: every tool answers at once with a clear error; the server is fine."""

from __future__ import annotations

import time

import pytest

from aegis_tornado.assembly import gitea_tools

from ..conftest import with_settings


@pytest.fixture
def registry(aegis_settings):
    # Port 9 (discard) on loopback: nothing listens there, so connections are refused.
    client, tools = gitea_tools(aegis_settings, "http://127.0.0.1:9", "token-unused-1234")
    yield tools
    client.close()


@with_settings(gitea_timeout=1.0, gitea_retries=2)
@pytest.mark.gen_test(timeout=30)
async def test_refused_connections_are_reported_quickly(call, api):
    started = time.monotonic()
    for tool, arguments in (
        ("list_repositories", {}),
        ("search", {"query": "x"}),
        ("get_repository", {"owner": "a", "repo": "b"}),
    ):
        message = await call.error(tool, **arguments)
        assert "Gitea is unavailable" in message, message
    assert time.monotonic() - started < 20
    assert (await api.request("/health", key=None)).code == 200
    assert (await api.request("/mcp/tools")).code == 200
