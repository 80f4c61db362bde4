"""search and fetch: ChatGPT deep research's pair, including through the official MCP client."""

from __future__ import annotations

import json
import re

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from ..conftest import KEY, with_settings


def ids_by_kind(results):
    kinds: dict[str, list[str]] = {}
    for result in results:
        kinds.setdefault(result["id"].split(":", 1)[0], []).append(result["id"])
    return kinds


@pytest.mark.gen_test
async def test_search_finds_repositories_issues_and_paths(call):
    found = await call("search", query="dns")
    assert set(found) == {"results"}
    for result in found["results"]:
        assert set(result) == {"id", "title", "url"}
        assert result["url"].startswith("https://git.example.com/")
    kinds = ids_by_kind(found["results"])
    assert "repo:northwind/lighthouse" in kinds["repo"]
    assert "issue" in kinds and "pull" in kinds
    assert any(
        i.startswith("file:northwind/lighthouse@main:") and "dns" in i for i in kinds["file"]
    )


@pytest.mark.gen_test
async def test_fetch_every_kind(call):
    repo = await call("fetch", id="repo:northwind/lighthouse")
    assert set(repo) == {"id", "title", "text", "url", "metadata"}
    assert "Lighthouse is a small, self-hosted uptime monitor" in repo["text"]
    issue = await call("fetch", id="issue:northwind/lighthouse#3")
    assert "bidi" in issue["text"] and "Looking now" in issue["text"]
    assert issue["url"] == "https://git.example.com/northwind/lighthouse/issues/3"
    pull = await call("fetch", id="pull:northwind/lighthouse#12")
    assert "tests/test_dns.py" in pull["text"]
    file = await call(
        "fetch", id="file:northwind/lighthouse@main:src/lighthouse/checks/http/probe.py"
    )
    assert "def probe" in file["text"] and file["metadata"]["path"].endswith("probe.py")
    sha = (await call("list_commits", owner="northwind", repo="lighthouse", limit=1))["items"][0]
    commit = await call("fetch", id=f"commit:northwind/lighthouse@{sha['sha']}")
    assert "diff --git" in commit["text"]
    big = await call("fetch", id="file:northwind/lighthouse@main:data/sample-metrics.csv")
    assert big["metadata"]["truncated"] is True and "start_line=" in big["text"]


@pytest.mark.parametrize(
    "document_id",
    [
        "nonsense",
        "repo:northwind",
        "issue:northwind/lighthouse",
        "file:northwind/lighthouse@main",
        "file:northwind/lighthouse@main:../../etc/passwd",
        "commit:northwind/lighthouse@zzz",
        "issue:northwind/lighthouse#0",
        "repo:../x/y",
        "file:northwind/lighthouse@a..b:README.md",
        "pull:northwind/lighthouse#1@main",
    ],
)
@pytest.mark.gen_test
async def test_malformed_ids_are_refused_before_gitea(call, gitea, document_id):
    await call.error("fetch", id=document_id)
    assert gitea.requested_paths() == []


@pytest.mark.gen_test
async def test_fetch_refuses_sensitive_files(call, gitea):
    message = await call.error("fetch", id="file:northwind/lighthouse@main:deploy/id_rsa")
    assert message.startswith("Blocked by policy") and gitea.requested_paths() == []


@pytest.mark.gen_test
async def test_search_never_offers_sensitive_files(call):
    found = await call("search", query="env")
    assert not any(r["id"].endswith(":.env") for r in found["results"])


@with_settings(repo_denylist=("northwind/lighthouse",))
@pytest.mark.gen_test
async def test_denied_repositories_leak_through_neither_search_nor_fetch(call, gitea):
    found = await call("search", query="lighthouse")
    assert found["results"]  # the plugins still match
    for result in found["results"]:
        repo_part = re.split(r"[@#]", result["id"].split(":", 1)[1])[0]
        assert repo_part != "northwind/lighthouse", result
        assert not (result["url"] + "/").startswith(
            "https://git.example.com/northwind/lighthouse/"
        ), result
    for document_id in (
        "repo:northwind/lighthouse",
        "issue:northwind/lighthouse#3",
        "file:northwind/lighthouse@main:README.md",
        "commit:northwind/lighthouse@6253de10",
    ):
        assert "not found" in await call.error("fetch", id=document_id)
    named = [p for p in gitea.requested_paths() if "/northwind/lighthouse/" in p + "/"]
    assert named == []


@pytest.mark.gen_test(timeout=30)
async def test_search_then_fetch_with_the_official_client(api, base_url):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}) as http:
        async with streamable_http_client(base_url + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                names = {t.name for t in (await session.list_tools()).tools}
                assert {"search", "fetch"} <= names
                found = await session.call_tool("search", {"query": "alert routing"})
                assert not found.is_error and len(found.content) == 1
                results = found.structured_content["results"]
                assert results
                fetched = await session.call_tool("fetch", {"id": results[0]["id"]})
                document = fetched.structured_content
                assert set(document) >= {"id", "title", "text", "url", "metadata"}
                assert document["id"] == results[0]["id"] and document["url"]


ID = re.compile(
    r"(repo|issue|pull|commit|file|wiki|run):northwind/[a-z-]+(#\d+|@\w+:[\w./-]+|:[\w.-]+)?"
)


@with_settings(max_result_bytes=1000)
@pytest.mark.gen_test(timeout=30)
async def test_a_small_result_limit_drops_whole_search_results(call):
    """Never a cut id or URL: whole results go, from the end, and the result says so."""
    found = await call("search", query="dns")
    assert found["truncated"] is True and "omitted" in found["truncated_note"]
    assert found["results"], found
    assert len(json.dumps(found, ensure_ascii=False).encode()) <= 1000
    for result in found["results"]:
        assert "truncated" not in json.dumps(result), result
        assert ID.fullmatch(result["id"]), result
        assert result["url"].startswith("https://git.example.com/northwind/"), result
    # What is left is the head of the full list, and each id still fetches.
    for result in found["results"]:
        assert (await call.raw("fetch", id=result["id"])).get("isError") is not True


@with_settings(max_result_bytes=100_000)
@pytest.mark.gen_test(timeout=30)
async def test_search_results_are_more_than_a_small_limit_holds(call):
    # The premise of the test above: the full answer is well over 1000 bytes.
    found = await call("search", query="dns")
    assert len(json.dumps(found, ensure_ascii=False).encode()) > 2000
    assert "truncated" not in found


@pytest.mark.gen_test
async def test_search_finds_wiki_pages_and_runs_and_fetch_reads_them(call):
    from aegis_tornado.gitea_double.operations import LEAKED_PASSWORD, LEAKED_TOKEN

    found = await call("search", query="runbook")
    ids = [r["id"] for r in found["results"]]
    assert "wiki:northwind/lighthouse:On-call-Runbook" in ids
    page = await call("fetch", id="wiki:northwind/lighthouse:On-call-Runbook")
    assert page["text"].startswith("# On-call runbook") and LEAKED_PASSWORD not in page["text"]
    assert page["url"] == "https://git.example.com/northwind/lighthouse/wiki/On-call-Runbook"

    runs = await call("search", query="http/2 probes")
    assert "run:northwind/lighthouse#102" in [r["id"] for r in runs["results"]]
    run = await call("fetch", id="run:northwind/lighthouse#102")
    assert "Job test (3.12): failure" in run["text"] and "3. pytest: failure" in run["text"]
    assert "exit code 1" in run["text"]  # the end of the failed job's log
    assert LEAKED_TOKEN not in run["text"] and LEAKED_PASSWORD not in run["text"]
    assert run["metadata"]["conclusion"] == "failure"
    assert "Malformed wiki id" in await call.error("fetch", id="wiki:northwind/lighthouse")
    assert "Unknown id" in await call.error("fetch", id="run:northwind/lighthouse#x")
    assert "page_name" in await call.error("fetch", id="wiki:northwind/lighthouse:x/y")
