"""list_commits and get_commit."""

from __future__ import annotations

import pytest

from ..conftest import with_settings

LIGHTHOUSE = {"owner": "northwind", "repo": "lighthouse"}


@pytest.mark.gen_test
async def test_list_commits_pages(call):
    first = await call("list_commits", **LIGHTHOUSE, limit=5)
    assert first["total"] == 12 and first["has_more"] is True
    commit = first["items"][0]
    assert set(commit) == {"sha", "title", "author", "date", "url"}
    assert commit["url"] == f"https://git.example.com/northwind/lighthouse/commit/{commit['sha']}"
    last = await call("list_commits", **LIGHTHOUSE, limit=5, page=3)
    assert last["has_more"] is False and len(last["items"]) == 2


@pytest.mark.gen_test
async def test_list_commits_by_path_and_ref(call):
    by_path = await call("list_commits", **LIGHTHOUSE, path="src/lighthouse/checks/http/probe.py")
    assert 0 < len(by_path["items"]) < 12
    on_tag = await call("list_commits", **LIGHTHOUSE, ref="v1.0.0", limit=50)
    assert len(on_tag["items"]) < 12


@pytest.mark.gen_test
async def test_get_commit_with_its_diff(call):
    newest = (await call("list_commits", **LIGHTHOUSE, limit=1))["items"][0]
    commit = await call("get_commit", **LIGHTHOUSE, sha=newest["sha"][:10])
    assert commit["sha"] == newest["sha"]
    assert commit["diff"].startswith("diff --git")
    assert commit["files"] and commit["diff_truncated"] is False
    assert "not found" in await call.error("get_commit", **LIGHTHOUSE, sha="deadbeef")
    assert "sha" in await call.error("get_commit", **LIGHTHOUSE, sha="not-hex")


@with_settings(max_result_bytes=3000)
@pytest.mark.gen_test
async def test_big_diffs_are_capped(call):
    shas = [c["sha"] for c in (await call("list_commits", **LIGHTHOUSE, limit=50))["items"]]
    results = [await call("get_commit", **LIGHTHOUSE, sha=sha) for sha in shas]
    assert any(r["diff_truncated"] or r.get("truncated") for r in results)


@pytest.mark.gen_test
async def test_commits_of_an_empty_repository(call):
    message = await call.error("list_commits", owner="northwind", repo="empty-sandbox")
    assert "empty" in message
