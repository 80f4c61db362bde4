"""The ``outputSchema`` of every Gitea tool: what its ``structuredContent`` looks like.

Declared here, keyed by tool name, and attached when the registry is built, so a client can
validate results (MCP 2025-06-18+: ``structuredContent`` must validate against the
``outputSchema``; the official SDK client checks) and a model can see the shape before calling.

Every schema goes out in every ``tools/list``, which must stay under 16 KB for a caller with
every tool (tests/tools/test_registry.py), so a schema is the contract, not the documentation:
it names the keys a result always has that a client acts on (ids for the next tool, ``url`` to
cite, paging, ``truncated``), typed where the type matters. Results carry more keys (the tool
descriptions say which) and every schema allows extra keys, so a result cut to size
(``truncated``, ``truncated_note``) or cleaned (``sanitized``) still validates. Values read from
Gitea may be null where Gitea leaves them out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..mcp.registry import ToolRegistry

STRING: dict[str, Any] = {"type": "string"}
TEXT: dict[str, Any] = {"type": ["string", "null"]}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
ARRAY: dict[str, Any] = {"type": "array"}


def _has(*keys: str, **typed: dict[str, Any]) -> dict[str, Any]:
    """An object that always has ``keys`` and ``typed`` (with those types), and maybe more."""
    schema: dict[str, Any] = {"type": "object"}
    if typed:
        schema["properties"] = typed
    schema["required"] = [*keys, *typed]
    return schema


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _keys(*keys: str) -> dict[str, Any]:
    """A list entry: always has ``keys`` (entries are objects: the tool builds them)."""
    return {"required": list(keys)}


def _page(*item_keys: str) -> dict[str, Any]:
    """A list tool's result (``tools.results.list_result``): ``items``, each an object with
    ``item_keys``, and ``has_more``. It has ``page``, ``limit`` and ``total`` too, but a client
    knows the first two (it asked for them) and cannot rely on the third (null when unknown)."""
    return _has(items=_array(_keys(*item_keys)), has_more=BOOLEAN)


#: The keys of a result with a diff (``tools.diffs``): changed files and the capped diff.
_DIFF = {"files": ARRAY, "diff": TEXT}

OUTPUT_SCHEMAS: dict[str, dict[str, Any]] = {
    # ChatGPT's search/fetch shapes (OpenAI's deep-research contract), typed in full.
    "search": _has(results=_array(_has(id=STRING, title=STRING, url=STRING))),
    "fetch": _has(id=STRING, title=STRING, text=TEXT, url=STRING),
    "list_repositories": _page("owner", "repo", "url"),
    "get_repository": _has("owner", "repo", "default_branch", "url"),
    "list_branches": _page("name", "url"),
    "list_tags": _page("name", "url"),
    "get_file_tree": _page("path", "type"),
    "get_file_contents": _has("path", "url", text=TEXT, binary=BOOLEAN, truncated=BOOLEAN),
    "list_commits": _page("sha", "url"),
    "get_commit": _has("sha", "url", **_DIFF),
    "list_issues": _page("number", "title", "state", "url"),
    "get_issue": _has("number", "title", "state", "url", body=TEXT),
    "list_pull_requests": _page("number", "title", "state", "url"),
    "get_pull_request": _has("number", "title", "state", "url", body=TEXT, **_DIFF),
    "list_releases": _page("tag", "url"),
    "list_workflow_runs": _page("run_id", "status", "url"),
    "get_workflow_run": _has("run_id", "status", "url", jobs=_array(_keys("job_id", "name"))),
    "get_job_log": _has("job_id", "total_lines", "start_line", "end_line", log=STRING),
    "list_wiki_pages": _page("page_name", "title", "url"),
    "get_wiki_page": _has("page_name", "title", "url", content=STRING),
    "compare_refs": _has("base", "head", "url", commits=ARRAY, **_DIFF),
    "get_commit_status": _has("ref", statuses=ARRAY, failing=ARRAY),
    "list_labels": _page("name"),
    "list_milestones": _page("title", "url"),
}


def with_output_schemas(registry: ToolRegistry) -> ToolRegistry:
    """The same tools, each with its ``outputSchema`` (a tool without one is a bug)."""
    missing = [tool.name for tool in registry if tool.name not in OUTPUT_SCHEMAS]
    if missing:
        raise ValueError(f"tools without an outputSchema: {missing}")
    return ToolRegistry(
        [dataclasses.replace(tool, output_schema=OUTPUT_SCHEMAS[tool.name]) for tool in registry]
    )
