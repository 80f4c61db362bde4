"""`make run` without a Gitea: the demo process serves OAuth against its demo Gitea, prints the
demo users' passwords, and a newcomer signs in with the SDK as one of them."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from ..test_cli import Server
from .conftest import Browser, sdk_provider


async def sign_in_and_list(base: str, login: str) -> dict:
    browser = Browser(login)
    try:
        async with httpx2.AsyncClient(auth=sdk_provider(base, browser), timeout=20) as http:
            async with streamable_http_client(f"{base}/mcp", http_client=http) as (r, w):
                async with ClientSession(r, w) as session:
                    await session.initialize()
                    result = await session.call_tool(
                        "get_repository", {"owner": "carol", "repo": "incident-response"}
                    )
                    return json.loads(result.content[0].text) if not result.is_error else {}
    finally:
        await browser.aclose()


def test_demo_serves_oauth_with_printed_users(tmp_path):
    server = Server(tmp_path)
    try:
        banner = ""
        deadline = time.monotonic() + 10
        while "carol" not in banner and time.monotonic() < deadline:
            banner += server.proc.stderr.readline()
        passwords = dict(re.findall(r"^\s+(alice|bob|carol)\s+(\S+)$", banner, re.M))
        assert set(passwords) == {"alice", "bob", "carol"}
        base = f"http://127.0.0.1:{server.port}"
        assert f"{base}/mcp" in banner
        # carol reads her private repository; alice, who may not, gets "not found".
        carol = asyncio.run(sign_in_and_list(base, "carol"))
        assert carol.get("full_name") == "carol/incident-response"
        assert asyncio.run(sign_in_and_list(base, "alice")) == {}
    finally:
        code, out, _ = server.stop()
    assert code == 0
    assert "agm_at_" not in out and "agm_rt_" not in out
