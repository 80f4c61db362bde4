"""Every tool declares an outputSchema, and its real results (through the running server, from
the Gitea double) validate against it: a client that checks structuredContent (the official SDK
does) never rejects one."""

from __future__ import annotations

import json

import jsonschema
import pytest

from aegis_tornado.tools.output_schemas import OUTPUT_SCHEMAS

from ..conftest import body_json, with_settings

LIGHTHOUSE = {"owner": "northwind", "repo": "lighthouse"}
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
CALLS = [
    ("search", {"query": "lighthouse"}),
    ("search", {"query": "dns"}),
    ("search", {"query": "env"}),
    ("fetch", {"id": "repo:northwind/lighthouse"}),
    ("fetch", {"id": "issue:northwind/lighthouse#3"}),
    ("fetch", {"id": "pull:northwind/lighthouse#12"}),
    ("fetch", {"id": "file:northwind/lighthouse@main:data/sample-metrics.csv"}),
    ("fetch", {"id": "file:northwind/lighthouse@main:docs/images/logo.png"}),
    ("list_repositories", {"limit": 50}),
    ("list_repositories", {"limit": 50, "page": 2}),
    ("list_repositories", {"query": "dotfiles"}),
    ("get_repository", LIGHTHOUSE),
    ("get_repository", {"owner": "alice", "repo": "dotfiles"}),
    ("list_branches", {**LIGHTHOUSE, "limit": 50}),
    ("list_tags", LIGHTHOUSE),
    ("get_file_tree", LIGHTHOUSE),
    ("get_file_tree", {**LIGHTHOUSE, "path": "src/lighthouse/checks"}),
    ("get_file_tree", {**LIGHTHOUSE, "recursive": True, "limit": 20}),
    ("get_file_contents", {**LIGHTHOUSE, "path": "README.md"}),
    ("get_file_contents", {**LIGHTHOUSE, "path": "README.md", "ref": "v1.0.0"}),
    ("get_file_contents", {**LIGHTHOUSE, "path": "README.md", "start_line": 3, "end_line": 5}),
    ("get_file_contents", {**LIGHTHOUSE, "path": "data/sample-metrics.csv"}),
    ("get_file_contents", {**LIGHTHOUSE, "path": "docs/images/logo.png"}),
    ("get_file_contents", {**LIGHTHOUSE, "path": "src/lighthouse/auth/roles.py"}),
    ("list_commits", {**LIGHTHOUSE, "limit": 50}),
    ("list_commits", {**LIGHTHOUSE, "path": "src/lighthouse/checks/http/probe.py"}),
    ("list_issues", {**LIGHTHOUSE, "state": "all", "limit": 50}),
    ("list_issues", {**LIGHTHOUSE, "type": "pulls", "state": "all"}),
    ("get_issue", {**LIGHTHOUSE, "number": 3}),
    ("list_workflow_runs", LIGHTHOUSE),
    ("get_workflow_run", {**LIGHTHOUSE, "run_id": 102}),
    ("get_job_log", {**LIGHTHOUSE, "job_id": 501}),
    ("list_wiki_pages", LIGHTHOUSE),
    ("get_wiki_page", {**LIGHTHOUSE, "page_name": "On-call-Runbook"}),
    ("compare_refs", {**LIGHTHOUSE, "base": "main", "head": "feature/http2-probes"}),
    ("get_commit_status", {**LIGHTHOUSE, "ref": "feature/http2-probes"}),
    ("list_labels", LIGHTHOUSE),
    ("list_milestones", {**LIGHTHOUSE, "state": "all"}),
    ("get_issue", {**LIGHTHOUSE, "number": 12}),
    ("list_pull_requests", {**LIGHTHOUSE, "state": "all"}),
    ("get_pull_request", {**LIGHTHOUSE, "number": 12}),
    ("list_releases", LIGHTHOUSE),
]


async def mcp_call(api, method: str, **params):
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": method,
        "params": {**params, "_meta": META},
    }
    headers = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
    if "name" in params:
        headers["Mcp-Name"] = params["name"]
    response = await api.mcp(message, headers=headers)
    assert response.code == 200, response.body
    return body_json(response)["result"]


@pytest.mark.gen_test(timeout=60)
async def test_every_tool_result_validates_against_its_output_schema(api):
    tools = {t["name"]: t for t in (await mcp_call(api, "tools/list"))["tools"]}
    assert set(tools) == set(OUTPUT_SCHEMAS)
    validators = {}
    for name, tool in tools.items():
        jsonschema.Draft202012Validator.check_schema(tool["outputSchema"])
        validators[name] = jsonschema.Draft202012Validator(tool["outputSchema"])
    commits = await mcp_call(api, "tools/call", name="list_commits", arguments=LIGHTHOUSE)
    sha = commits["structuredContent"]["items"][0]["sha"]
    calls = [*CALLS, ("get_commit", {**LIGHTHOUSE, "sha": sha})]
    calls.append(("fetch", {"id": f"commit:northwind/lighthouse@{sha}"}))
    called = set()
    for name, arguments in calls:
        result = await mcp_call(api, "tools/call", name=name, arguments=arguments)
        assert not result.get("isError"), (name, arguments, result["content"][0]["text"])
        structured = result["structuredContent"]
        assert json.loads(result["content"][0]["text"]) == structured
        errors = [e.message for e in validators[name].iter_errors(structured)]
        assert not errors, (name, arguments, errors)
        called.add(name)
    assert called == set(OUTPUT_SCHEMAS)  # every tool was exercised


@with_settings(max_result_bytes=1200)
@pytest.mark.gen_test(timeout=60)
async def test_results_cut_to_size_still_validate(api):
    truncated = 0
    for name, arguments in CALLS:
        result = await mcp_call(api, "tools/call", name=name, arguments=arguments)
        if result.get("isError"):
            continue
        structured = result["structuredContent"]
        truncated += bool(structured.get("truncated"))
        validator = jsonschema.Draft202012Validator(OUTPUT_SCHEMAS[name])
        errors = [e.message for e in validator.iter_errors(structured)]
        assert not errors, (name, arguments, errors)
    assert truncated >= 5  # the limit did cut results
