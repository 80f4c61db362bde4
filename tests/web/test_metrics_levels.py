"""Levels read at scrape time for one process without STATE_URL: tool calls in progress, and
no shared-store gauge (there is no store). With STATE_URL: tests/state/."""

from __future__ import annotations

import asyncio

import pytest

from ..conftest import with_settings
from .test_metrics import SCRAPER, scrape


@with_settings(metrics_key=SCRAPER)
@pytest.mark.gen_test(timeout=30)
async def test_tool_calls_in_progress_is_the_calls_running_now(api, ctx):
    assert (await scrape(api)).value("aegis_tool_calls_in_progress") == 0
    running = [
        asyncio.ensure_future(
            api.request(
                "/mcp/tool/call",
                "POST",
                json_body={"tool": "slow", "arguments": {"seconds": 1.5, "steps": 1}},
            )
        )
        for _ in range(2)
    ]
    for _ in range(100):
        if ctx.calls.in_use() == 2:
            break
        await asyncio.sleep(0.02)
    during = await scrape(api)
    assert during.value("aegis_tool_calls_in_progress") == 2
    names = {s.name for s in during.samples}
    assert "aegis_state_store_available" not in names  # no STATE_URL, no store
    assert {"aegis_auth_limiter_tracked_ips", "aegis_auth_limiter_blocked_ips"} <= names
    assert [r.code for r in await asyncio.gather(*running)] == [200, 200]
    assert (await scrape(api)).value("aegis_tool_calls_in_progress") == 0
