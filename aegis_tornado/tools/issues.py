"""Issues and pull requests (they share one number space per repository)."""

from __future__ import annotations

from typing import Any

from ..gitea import MAX_PAGE_LIMIT
from ..mcp.registry import Tool
from .base import (
    LIMIT,
    NUMBER,
    PAGE,
    STATE,
    ToolEnv,
    checked,
    list_result,
    make_tool,
    obj,
    objs,
    repo_schema,
    text,
)
from .diffs import read_diff
from .validation import validate_number

MAX_COMMENTS = 100
LABELS = {
    "type": "array",
    "items": {"type": "string", "maxLength": 100},
    "maxItems": 20,
}


def _login(user: Any) -> str | None:
    return user.get("login") if isinstance(user, dict) else None


def issue_summary(env: ToolEnv, owner: str, repo: str, data: dict[str, Any]) -> dict[str, Any]:
    number = data.get("number")
    is_pull = bool(data.get("pull_request"))
    return {
        "number": number,
        "type": "pull" if is_pull else "issue",
        "title": data.get("title"),
        "state": data.get("state"),
        "author": _login(data.get("user")),
        "labels": [label.get("name") for label in objs(data.get("labels"))],
        "comments": data.get("comments", 0),
        "created_at": data.get("created_at"),
        "updated_at": data.get("updated_at"),
        "url": env.web_url(owner, repo, "pulls" if is_pull else "issues", str(number)),
    }


async def list_issues(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    params: dict[str, Any] = {"state": arguments["state"]}
    if arguments.get("type"):
        params["type"] = arguments["type"]
    if arguments.get("labels"):
        params["labels"] = ",".join(arguments["labels"])
    if arguments.get("query"):
        params["q"] = arguments["query"]
    page = await env.page(
        "issues", arguments, f"Issues of {owner}/{repo}", params, owner=owner, repo=repo
    )
    return list_result(page, [issue_summary(env, owner, repo, i) for i in page.items])


async def get_issue(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    number = checked(validate_number, arguments["number"])
    what = f"Issue #{number} of {owner}/{repo}"
    data = await env.gitea(
        env.client.get_json("issue", owner=owner, repo=repo, index=number), what, (owner, repo)
    )
    result = issue_summary(env, owner, repo, data)
    result["body"] = text(data.get("body"))
    result["assignees"] = [_login(u) for u in objs(data.get("assignees"))]
    result["milestone"] = obj(data.get("milestone")).get("title")
    result["closed_at"] = data.get("closed_at")
    comments: list = []
    if data.get("comments"):
        await context.progress("reading comments")
        comments = await env.gitea(
            env.client.get_json("issue_comments", owner=owner, repo=repo, index=number),
            what,
            (owner, repo),
        )
    result["comment_list"] = [
        {
            "author": _login(c.get("user")),
            "created_at": c.get("created_at"),
            "body": text(c.get("body")),
        }
        for c in comments[:MAX_COMMENTS]
    ]
    if len(comments) > MAX_COMMENTS:
        result["note"] = (
            f"Only the first {MAX_COMMENTS} of {len(comments)} comments are shown; "
            f"see {result['url']}"
        )
    if result["type"] == "pull":
        result.setdefault("note", "This is a pull request: get_pull_request shows its changes.")
    return result


def pull_summary(env: ToolEnv, owner: str, repo: str, data: dict[str, Any]) -> dict[str, Any]:
    number = data.get("number")
    return {
        "number": number,
        "title": data.get("title"),
        "state": data.get("state"),
        "draft": bool(data.get("draft")),
        "merged": bool(data.get("merged")),
        "author": _login(data.get("user")),
        "head": obj(data.get("head")).get("ref"),
        "base": obj(data.get("base")).get("ref"),
        "labels": [label.get("name") for label in objs(data.get("labels"))],
        "updated_at": data.get("updated_at"),
        "url": env.web_url(owner, repo, "pulls", str(number)),
    }


async def list_pull_requests(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    page = await env.page(
        "pulls",
        arguments,
        f"Pull requests of {owner}/{repo}",
        {"state": arguments["state"]},
        owner=owner,
        repo=repo,
    )
    return list_result(page, [pull_summary(env, owner, repo, p) for p in page.items])


async def get_pull_request(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    number = checked(validate_number, arguments["number"])
    what = f"Pull request #{number} of {owner}/{repo}"
    data = await env.gitea(
        env.client.get_json("pull", owner=owner, repo=repo, index=number), what, (owner, repo)
    )
    await context.progress("reading changed files")
    files = await env.gitea(
        env.client.get_page(
            "pull_files", owner=owner, repo=repo, index=number, page=1, limit=MAX_PAGE_LIMIT
        ),
        what,
        (owner, repo),
    )
    await context.progress("reading the diff")
    diff = await read_diff(env, "pull_diff", what, owner=owner, repo=repo, index=number)
    result = pull_summary(env, owner, repo, data)
    result.update(
        body=text(data.get("body")),
        mergeable=data.get("mergeable"),
        merged_at=data.get("merged_at"),
        additions=data.get("additions"),
        deletions=data.get("deletions"),
        changed_files=data.get("changed_files"),
        files=[
            {
                "path": f.get("filename"),
                "status": f.get("status"),
                "additions": f.get("additions"),
                "deletions": f.get("deletions"),
            }
            for f in files.items
        ],
        **diff,
    )
    if files.has_more:
        result["files_note"] = f"Only the first {MAX_PAGE_LIMIT} changed files are listed."
    if diff["diff_truncated"]:
        result["note"] = f"The diff was cut; see the full change at {result['url']}/files"
    return result


def tools(env: ToolEnv) -> list[Tool]:
    return [
        make_tool(
            env,
            "list_issues",
            "List issues",
            "Issues and pull requests (type for one kind), newest first, "
            "by state, labels (all given) and words in title or body (query). Paged.",
            repo_schema(
                state=STATE,
                labels=LABELS,
                type={"type": "string", "enum": ["issues", "pulls"]},
                query={"type": "string", "maxLength": 200},
                page=PAGE,
                limit=LIMIT,
            ),
            list_issues,
        ),
        make_tool(
            env,
            "get_issue",
            "Get issue",
            "One issue (or pull request) by number, with its body and comments.",
            repo_schema("number", number=NUMBER),
            get_issue,
        ),
        make_tool(
            env,
            "list_pull_requests",
            "List pull requests",
            "Pull requests by state, with head and base branches. Paged.",
            repo_schema(state=STATE, page=PAGE, limit=LIMIT),
            list_pull_requests,
        ),
        make_tool(
            env,
            "get_pull_request",
            "Get pull request",
            "One pull request by number: description, status, changed files and the diff "
            "(capped in size).",
            repo_schema("number", number=NUMBER),
            get_pull_request,
        ),
    ]
