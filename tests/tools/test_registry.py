"""The toolset as a whole: what tools/list shows a model."""

from __future__ import annotations

import json

import pytest

EXPECTED = {
    "search",
    "fetch",
    "list_repositories",
    "get_repository",
    "list_branches",
    "list_tags",
    "get_file_tree",
    "get_file_contents",
    "list_commits",
    "get_commit",
    "list_issues",
    "get_issue",
    "list_pull_requests",
    "get_pull_request",
    "list_releases",
    "list_workflow_runs",
    "get_workflow_run",
    "get_job_log",
    "list_wiki_pages",
    "get_wiki_page",
    "compare_refs",
    "get_commit_status",
    "list_labels",
    "list_milestones",
}
#: One name, one meaning, in every tool.
SHARED_ARGUMENTS = {
    "owner": "string",
    "repo": "string",
    "path": "string",
    "ref": "string",
    "number": "integer",
    "sha": "string",
    "query": "string",
    "state": "string",
    "labels": "array",
    "type": "string",
    "recursive": "boolean",
    "page": "integer",
    "limit": "integer",
    "start_line": "integer",
    "end_line": "integer",
    "id": "string",
    "branch": "string",
    "status": "string",
    "event": "string",
    "run_id": "integer",
    "job_id": "integer",
    "tail_lines": "integer",
    "page_name": "string",
    "base": "string",
    "head": "string",
}


#: Issue 13: tools/list stays under 16 KB for a caller with every tool, output schemas and all.
LIST_BUDGET = 16 * 1024
META_2026 = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


async def served_tools_lists(api) -> dict[str, bytes]:
    """The whole answer, as served, of every way to list the tools."""
    lists = {"GET /mcp/tools": (await api.request("/mcp/tools")).body}
    for version in ("2025-06-18", "2025-11-25"):
        response = await api.mcp(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"MCP-Protocol-Version": version},
        )
        lists[f"tools/list {version}"] = response.body
    response = await api.mcp(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META_2026}},
        headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"},
    )
    lists["tools/list 2026-07-28"] = response.body
    return lists


@pytest.mark.gen_test
async def test_the_whole_tools_list_is_under_16_kb(api):
    for how, body in (await served_tools_lists(api)).items():
        answer = json.loads(body)
        tools = answer["tools"] if how.startswith("GET") else answer["result"]["tools"]
        assert {t["name"] for t in tools} == EXPECTED, how
        assert all(t["outputSchema"]["type"] == "object" for t in tools), how
        assert len(body) < LIST_BUDGET, (how, len(body))


@pytest.mark.gen_test
async def test_tools_list_is_complete_read_only_and_small(api):
    response = await api.request("/mcp/tools")
    tools = json.loads(response.body)["tools"]
    assert len(response.body) < LIST_BUDGET
    assert {t["name"] for t in tools} == EXPECTED
    for tool in tools:
        assert len(tool["description"]) > 40, tool["name"]
        assert tool["annotations"]["readOnlyHint"] is True
        schema = tool["inputSchema"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        # A title is shown only where it says more than the name ("Read a file").
        assert tool.get("title", "x").lower() != tool["name"].replace("_", " "), tool["name"]
        for name, prop in schema["properties"].items():
            assert name in SHARED_ARGUMENTS, (tool["name"], name)
            assert prop["type"] == SHARED_ARGUMENTS[name], (tool["name"], name)
            if name == "limit":
                assert (prop["minimum"], prop["maximum"], prop["default"]) == (1, 50, 30)
            if name == "state":
                assert prop["enum"] == ["open", "closed", "all"]


@pytest.mark.gen_test
async def test_search_and_fetch_have_chatgpts_shapes(api):
    tools = {t["name"]: t for t in json.loads((await api.request("/mcp/tools")).body)["tools"]}
    assert tools["search"]["inputSchema"]["required"] == ["query"]
    assert list(tools["search"]["inputSchema"]["properties"]) == ["query"]
    assert tools["fetch"]["inputSchema"]["required"] == ["id"]
    assert list(tools["fetch"]["inputSchema"]["properties"]) == ["id"]


@pytest.mark.gen_test
async def test_a_short_gitea_token_is_redacted_even_from_short_strings():
    from aegis_tornado.gitea import GiteaClient
    from aegis_tornado.tools.base import ToolEnv
    from aegis_tornado.tools.policy import PathPolicy, RepoPolicy

    client = GiteaClient("http://127.0.0.1:9", "tok42")
    env = ToolEnv(
        client, RepoPolicy(), PathPolicy(), "https://git.example.com", withheld=("tok42",)
    )
    try:
        result = await env.finish({"name": "a tok42", "ok": "plain"})
    finally:
        client.close()
    assert "tok42" not in result["name"] and result["ok"] == "plain"
    assert result["sanitized"]["secrets_redacted"] == ["gitea-token"]
