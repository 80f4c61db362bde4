"""A dead, slow or broken Gitea: clear isError results within the deadline, then recovery."""

from __future__ import annotations

import time

import pytest

from ..conftest import with_settings
from .conftest import GITEA_TOKEN

LIGHTHOUSE = {"owner": "northwind", "repo": "lighthouse"}
FAST = dict(gitea_timeout=0.5, gitea_retries=1)


@with_settings(**FAST)
@pytest.mark.gen_test(timeout=20)
async def test_hanging_gitea_times_out_then_recovers(call, gitea, logs):
    gitea.faults.add("hang", delay=30)
    started = time.monotonic()
    message = await call.error("get_repository", **LIGHTHOUSE)
    assert "Gitea is unavailable" in message
    assert time.monotonic() - started < 5  # the deadline, not the hang
    gitea.faults.clear()
    assert (await call("get_repository", **LIGHTHOUSE))["repo"] == "lighthouse"
    assert GITEA_TOKEN not in logs.stdout_text() + message


@with_settings(**FAST)
@pytest.mark.parametrize(
    "kind, options, fragment",
    [
        ("status", {"status": 500}, "Gitea is unavailable"),
        ("status", {"status": 502}, "Gitea is unavailable"),
        ("malformed", {}, "could not use"),
        ("truncated", {}, "could not use"),
        ("huge", {"size": 20 * 1024 * 1024}, "could not use"),
        ("disconnect", {}, "Gitea is unavailable"),
        ("status", {"status": 401}, "refused the server's own token"),
    ],
)
@pytest.mark.gen_test(timeout=30)
async def test_upstream_faults_become_clear_errors(call, gitea, kind, options, fragment):
    gitea.faults.add(kind, **options)
    assert fragment in await call.error("list_branches", **LIGHTHOUSE)
    gitea.faults.clear()
    assert (await call("list_branches", **LIGHTHOUSE))["items"]


@with_settings(**FAST)
@pytest.mark.gen_test(timeout=20)
async def test_transient_502_is_retried(call, gitea):
    gitea.faults.add("status", status=502, times=1)
    assert (await call("list_tags", **LIGHTHOUSE))["items"]
