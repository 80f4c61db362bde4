"""The ``outputSchema`` of every Gitea tool: what its ``structuredContent`` looks like.

Declared here, keyed by tool name, and attached when the registry is built, so a client can
validate results (the official SDK client does) and a model can see the shape before calling.
A schema lists the keys a result always has; results may add more (``truncated`` and
``truncated_note`` when a result was cut to size, ``sanitized`` when text was cleaned, ``note``).
Values read from Gitea may be null where Gitea leaves them out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..mcp.registry import ToolRegistry

STRING: dict[str, Any] = {"type": "string"}
TEXT: dict[str, Any] = {"type": ["string", "null"]}
INTEGER: dict[str, Any] = {"type": "integer"}
COUNT: dict[str, Any] = {"type": ["integer", "null"]}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
FLAG: dict[str, Any] = {"type": ["boolean", "null"]}
NAMES: dict[str, Any] = {"type": "array", "items": STRING}


def _object(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


#: Keys any result may add (a result cut to stay under MAX_RESULT_BYTES, cleaned text) are
#: declared only by ``get_file_contents``: elsewhere they are extra keys, which every schema
#: allows, and leaving them out keeps ``tools/list`` small.
_SANITIZED = _object([], invisible_characters_removed=INTEGER, secrets_redacted=_array(STRING))


def _page(item: dict[str, Any], **more: dict[str, Any]) -> dict[str, Any]:
    """The shape every list tool returns (``tools.base.list_result``)."""
    return _object(
        ["items", "page", "limit", "has_more", "total", *more],
        items=_array(item),
        page=INTEGER,
        limit=INTEGER,
        has_more=BOOLEAN,
        total=COUNT,
        **{key: value for key, value in more.items()},
    )


def _with(base: dict[str, Any], required: list[str], **properties: dict[str, Any]) -> dict:
    return _object([*base["required"], *required], **base["properties"], **properties)


_REPO = _object(
    ["owner", "repo", "full_name", "url"],
    owner=STRING,
    repo=STRING,
    full_name=STRING,
    description=TEXT,
    private=BOOLEAN,
    archived=BOOLEAN,
    empty=BOOLEAN,
    fork=BOOLEAN,
    default_branch=TEXT,
    language=TEXT,
    stars=COUNT,
    updated_at=TEXT,
    url=STRING,
)
_BRANCH = _object(
    ["name", "url"],
    name=TEXT,
    commit_sha=TEXT,
    commit_message=TEXT,
    commit_date=TEXT,
    protected=FLAG,
    url=STRING,
)
_TAG = _object(["name", "url"], name=TEXT, commit_sha=TEXT, date=TEXT, message=TEXT, url=STRING)
_COMMIT = _object(["sha", "url"], sha=STRING, title=TEXT, author=TEXT, date=TEXT, url=STRING)
#: Workflow runs and jobs (tools/actions.py): Gitea's fields, null where it leaves them out.
_RUN = _object(
    ["run_id", "status", "url"],
    run_id=COUNT,
    number=COUNT,
    title=TEXT,
    workflow=TEXT,
    event=TEXT,
    status=TEXT,
    conclusion=TEXT,
    branch=TEXT,
    sha=TEXT,
    started_at=TEXT,
    url=STRING,
)
_JOB = _object(
    ["job_id", "name", "steps"], job_id=COUNT, name=TEXT, conclusion=TEXT, steps=_array({})
)
_WIKI_PAGE = _object(["title", "page_name", "url"], title=TEXT, page_name=STRING, url=STRING)
_ISSUE = _object(
    ["number", "title", "state", "url"],
    number=INTEGER,
    type={"enum": ["issue", "pull"]},
    title=TEXT,
    state=TEXT,
    author=TEXT,
    labels=NAMES,
    comments=COUNT,
    created_at=TEXT,
    updated_at=TEXT,
    url=STRING,
)
_PULL = _object(
    ["number", "title", "state", "url"],
    number=INTEGER,
    title=TEXT,
    state=TEXT,
    draft=FLAG,
    merged=FLAG,
    author=TEXT,
    head=TEXT,
    base=TEXT,
    labels=NAMES,
    updated_at=TEXT,
    url=STRING,
)
_RELEASE = _object(
    ["tag", "url"],
    tag=TEXT,
    name=TEXT,
    draft=FLAG,
    prerelease=FLAG,
    published_at=TEXT,
    author=TEXT,
    notes=TEXT,
    url=STRING,
)
_DIFF = {"diff": TEXT, "diff_truncated": BOOLEAN}

OUTPUT_SCHEMAS: dict[str, dict[str, Any]] = {
    # ChatGPT's search/fetch shapes (OpenAI's deep-research contract).
    "search": _object(
        ["results"],
        results=_array(_object(["id", "title", "url"], id=STRING, title=STRING, url=STRING)),
    ),
    "fetch": _object(
        ["id", "title", "text", "url"],
        id=STRING,
        title=STRING,
        text=TEXT,
        url=STRING,
        metadata={"type": "object"},
    ),
    "list_repositories": _page(_REPO),
    "get_repository": _with(
        _REPO,
        [],
        website=TEXT,
        size_kb=COUNT,
        open_issues=COUNT,
        open_pull_requests=COUNT,
        releases=COUNT,
        forks=COUNT,
        mirror=FLAG,
        created_at=TEXT,
        has_issues=FLAG,
        has_pull_requests=FLAG,
        topics=NAMES,
    ),
    "list_branches": _page(_BRANCH),
    "list_tags": _page(_TAG),
    "get_file_tree": _page(
        _object(["path", "type"], path=STRING, type=STRING, size=COUNT),
        owner=STRING,
        repo=STRING,
        path=STRING,
        ref=TEXT,
        recursive=BOOLEAN,
        url=STRING,
    ),
    "get_file_contents": _object(
        ["owner", "repo", "path", "ref", "binary", "text", "truncated", "url"],
        owner=STRING,
        repo=STRING,
        path=STRING,
        ref=TEXT,
        size=COUNT,
        binary=BOOLEAN,
        text=TEXT,
        truncated=BOOLEAN,
        start_line=COUNT,
        end_line=COUNT,
        total_lines=COUNT,
        url=STRING,
        note=STRING,
        truncated_note=STRING,
        sanitized=_SANITIZED,
    ),
    "list_commits": _page(_COMMIT),
    "get_commit": _with(
        _COMMIT,
        ["files"],
        message=TEXT,
        committer=TEXT,
        parents=NAMES,
        stats=_object([], additions=COUNT, deletions=COUNT),
        files=_array(_object(["path"], path=STRING, status=TEXT)),
        **_DIFF,
    ),
    "list_issues": _page(_ISSUE),
    "get_issue": _with(
        _ISSUE,
        ["body"],
        body=TEXT,
        assignees=NAMES,
        milestone=TEXT,
        closed_at=TEXT,
        comment_list=_array(_object([], author=TEXT, created_at=TEXT, body=TEXT)),
    ),
    "list_pull_requests": _page(_PULL),
    "get_pull_request": _with(
        _PULL,
        ["body"],
        body=TEXT,
        mergeable=FLAG,
        merged_at=TEXT,
        additions=COUNT,
        deletions=COUNT,
        changed_files=COUNT,
        files=_array(_object(["path"], path=STRING, status=TEXT, additions=COUNT, deletions=COUNT)),
        **_DIFF,
    ),
    "list_releases": _page(_RELEASE),
    "list_workflow_runs": _page(_RUN),
    "get_workflow_run": _with(_RUN, ["jobs"], jobs=_array(_JOB)),
    "get_job_log": _object(
        ["job_id", "total_lines", "start_line", "end_line", "log"],
        job_id=INTEGER,
        total_lines=INTEGER,
        start_line=INTEGER,
        end_line=INTEGER,
        log=STRING,
        ci_secrets_withheld=INTEGER,
    ),
    "list_wiki_pages": _page(_WIKI_PAGE),
    "get_wiki_page": _with(_WIKI_PAGE, ["content"], content=STRING),
    "compare_refs": _object(
        ["base", "head", "total_commits", "commits", "files", "diff", "url"],
        base=STRING,
        head=STRING,
        total_commits=INTEGER,
        commits=_array(_COMMIT),
        files=_array(_object(["path"], path=STRING, status=TEXT)),
        diff=STRING,
        diff_truncated=BOOLEAN,
        url=STRING,
    ),
    "get_commit_status": _object(
        ["ref", "statuses", "failing"],
        ref=STRING,
        sha=TEXT,
        state=TEXT,
        total=COUNT,
        statuses=_array(_object(["context", "state"], context=TEXT, state=TEXT, url=STRING)),
        failing=_array(TEXT),
        runs=_array(_object(["run_id"], run_id=COUNT, status=TEXT, conclusion=TEXT)),
    ),
    "list_labels": _page(_object(["name"], name=TEXT, description=STRING, color=TEXT)),
    "list_milestones": _page(_object(["title", "url"], title=TEXT, state=TEXT, url=STRING)),
}


def with_output_schemas(registry: ToolRegistry) -> ToolRegistry:
    """The same tools, each with its ``outputSchema`` (a tool without one is a bug)."""
    missing = [tool.name for tool in registry if tool.name not in OUTPUT_SCHEMAS]
    if missing:
        raise ValueError(f"tools without an outputSchema: {missing}")
    return ToolRegistry(
        [dataclasses.replace(tool, output_schema=OUTPUT_SCHEMAS[tool.name]) for tool in registry]
    )
