"""list_issues, get_issue, list_pull_requests, get_pull_request, list_releases."""

from __future__ import annotations

import pytest

LIGHTHOUSE = {"owner": "northwind", "repo": "lighthouse"}


@pytest.mark.gen_test
async def test_list_issues_filters_and_pages(call):
    opened = await call("list_issues", **LIGHTHOUSE, limit=50)
    assert opened["has_more"] is True
    assert all(i["state"] == "open" for i in opened["items"])
    issues_only = await call("list_issues", **LIGHTHOUSE, type="issues", state="all", limit=50)
    assert all(i["type"] == "issue" for i in issues_only["items"])
    pulls = await call("list_issues", **LIGHTHOUSE, type="pulls", state="all")
    assert pulls["items"] and all(i["type"] == "pull" for i in pulls["items"])
    closed = await call("list_issues", **LIGHTHOUSE, state="closed", limit=50)
    assert closed["items"] and all(i["state"] == "closed" for i in closed["items"])
    labelled = await call("list_issues", **LIGHTHOUSE, state="all", labels=["bug"], limit=50)
    assert labelled["items"] and all("bug" in i["labels"] for i in labelled["items"])
    assert "state" in await call.error("list_issues", **LIGHTHOUSE, state="merged")


@pytest.mark.gen_test
async def test_get_issue_with_comments_and_clean_text(call):
    issue = await call("get_issue", **LIGHTHOUSE, number=3)
    assert issue["type"] == "issue" and issue["comment_list"]
    assert issue["comment_list"][0]["author"] == "bob"
    assert "\u202e" not in issue["body"] and "\u200b" not in issue["body"]
    assert issue["url"] == "https://git.example.com/northwind/lighthouse/issues/3"
    as_issue = await call("get_issue", **LIGHTHOUSE, number=12)
    assert as_issue["type"] == "pull" and "get_pull_request" in as_issue["note"]
    assert "not found" in await call.error("get_issue", **LIGHTHOUSE, number=9999)
    assert "number" in await call.error("get_issue", **LIGHTHOUSE, number=0)


@pytest.mark.gen_test
async def test_pull_requests(call):
    opened = await call("list_pull_requests", **LIGHTHOUSE)
    assert {p["number"] for p in opened["items"]} == {47, 66}
    everything = await call("list_pull_requests", **LIGHTHOUSE, state="all")
    merged = next(p for p in everything["items"] if p["number"] == 12)
    assert merged["merged"] is True and merged["head"] == "fix/dns-flake"
    pull = await call("get_pull_request", **LIGHTHOUSE, number=12)
    assert {f["path"] for f in pull["files"]} == {
        "src/lighthouse/checks/dns/resolver.py",
        "tests/test_dns.py",
    }
    assert pull["diff"].startswith("diff --git") and pull["body"]
    assert pull["url"] == "https://git.example.com/northwind/lighthouse/pulls/12"


@pytest.mark.gen_test
async def test_releases(call):
    releases = await call("list_releases", **LIGHTHOUSE)
    tags = [r["tag"] for r in releases["items"]]
    assert "v1.0.0" in tags and "v1.3.0" not in tags  # the draft is hidden from the bot
    assert all(
        r["url"].startswith("https://git.example.com/northwind/lighthouse/releases/tag/")
        for r in releases["items"]
    )
