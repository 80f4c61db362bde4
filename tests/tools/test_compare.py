"""compare_refs and get_commit_status through the server, against the double."""

from __future__ import annotations

import pytest

from ..conftest import with_settings

LIGHTHOUSE = {"owner": "northwind", "repo": "lighthouse"}


@pytest.mark.gen_test
async def test_compare_lists_commits_files_and_the_diff(call, gitea):
    result = await call("compare_refs", **LIGHTHOUSE, base="main", head="feature/http2-probes")
    assert result["total_commits"] == len(result["commits"]) >= 1
    assert result["commits"][0]["title"] and result["files"]
    assert result["diff"].startswith("diff --git") and result["diff_truncated"] is False
    paths = {f["path"] for f in result["files"]}
    assert all(f"a/{path}" in result["diff"] for path in paths)
    assert result["url"].startswith("https://git.example.com/northwind/lighthouse/compare/")
    diff_calls = [r.query for r in gitea.double.requests if "/compare/" in r.path]
    assert [("output", "diff")] in diff_calls
    same = await call("compare_refs", **LIGHTHOUSE, base="main", head="main")
    assert same["total_commits"] == 0 and same["commits"] == []
    assert "base" in await call.error("compare_refs", **LIGHTHOUSE, base="a..b", head="main")
    assert "not found" in await call.error(
        "compare_refs", **LIGHTHOUSE, base="main", head="no-such-branch"
    )


@with_settings(sensitive_paths=("*.md",))
@pytest.mark.gen_test
async def test_compare_omits_the_diff_of_sensitive_files(call):
    result = await call("compare_refs", **LIGHTHOUSE, base="v1.0.0", head="main")
    assert any(path.endswith(".md") for path in result["diff_omitted_by_policy"])
    assert "[diff omitted: sensitive file" in result["diff"]


@with_settings(max_result_bytes=6000)
@pytest.mark.gen_test
async def test_a_long_comparison_is_cut(call):
    result = await call("compare_refs", **LIGHTHOUSE, base="v1.0.0", head="main")
    assert result["diff_truncated"] is True and "cut" in result["note"]


@pytest.mark.gen_test
async def test_commit_status_combines_checks_and_runs(call):
    failing = await call("get_commit_status", **LIGHTHOUSE, ref="feature/http2-probes")
    assert failing["state"] == "failure" and failing["failing"] == [
        "ci / test (3.12) (pull_request)"
    ]
    assert [r["run_id"] for r in failing["runs"]] == [102]
    assert failing["statuses"][0]["url"].startswith("https://git.example.com/northwind/")
    main = await call("get_commit_status", **LIGHTHOUSE, ref="main")
    assert main["state"] == "pending" and main["failing"] == []  # the newest run still runs
    assert main["runs"][0]["status"] == "in_progress"
    tagged = await call("get_commit_status", **LIGHTHOUSE, ref="v1.0.0")
    assert tagged["statuses"] == [] and tagged["runs"] == []
    assert "not found" in await call.error("get_commit_status", **LIGHTHOUSE, ref="nope")


@with_settings(repo_denylist=("northwind/lighthouse",))
@pytest.mark.gen_test
async def test_denied_repositories_are_not_found(call, gitea):
    missing = await call.error("get_commit_status", owner="northwind", repo="nothing", ref="main")
    denied = await call.error("get_commit_status", **LIGHTHOUSE, ref="main")
    assert denied == missing.replace("nothing", "lighthouse")
    compare = await call.error("compare_refs", **LIGHTHOUSE, base="main", head="main")
    assert "not found" in compare
    assert not [p for p in gitea.requested_paths() if "lighthouse" in p]
