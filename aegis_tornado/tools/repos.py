"""Repositories, branches and tags."""

from __future__ import annotations

from typing import Any

from ..gitea import MAX_PAGE_LIMIT
from ..mcp.registry import Tool
from .base import (
    LIMIT,
    PAGE,
    ToolEnv,
    list_result,
    make_tool,
    obj,
    repo_schema,
    schema,
    text,
)


def repo_summary(env: ToolEnv, data: dict[str, Any]) -> dict[str, Any]:
    owner = text(obj(data.get("owner")).get("login")) or text(data.get("full_name")).split("/")[0]
    name = text(data.get("name"))
    return {
        "owner": owner,
        "repo": name,
        "full_name": f"{owner}/{name}",
        "description": data.get("description") or "",
        "private": bool(data.get("private")),
        "archived": bool(data.get("archived")),
        "empty": bool(data.get("empty")),
        "fork": bool(data.get("fork")),
        "default_branch": data.get("default_branch"),
        "language": data.get("language") or None,
        "stars": data.get("stars_count", 0),
        "updated_at": data.get("updated_at"),
        "url": env.repo_url(owner, name),
    }


#: Under a restrictive policy, how many Gitea pages (of MAX_PAGE_LIMIT) a listing may scan to
#: fill a page.
MAX_SCANNED_PAGES = 20


async def list_repositories(env: ToolEnv, arguments: dict, context) -> dict:
    params: dict[str, Any] = {"sort": "updated", "order": "desc"}
    if arguments.get("query"):
        params["q"] = arguments["query"]
        params["includeDesc"] = "true"
    page_number, limit = arguments["page"], arguments["limit"]

    async def gitea_page(number: int, size: int):
        return await env.gitea(
            env.client.get_page("repo_search", page=number, limit=size, params=params),
            "The repository list",
        )

    if env.repos.unrestricted:
        page = await gitea_page(page_number, limit)
        return list_result(page, [repo_summary(env, r) for r in page.items])
    # Hidden repositories must leave no gaps and no counts: page over the filtered sequence,
    # scanning Gitea's pages as far as needed (within a bound).
    wanted = page_number * limit + 1
    visible: list[dict] = []
    gitea_more = True
    number = 1
    while gitea_more and len(visible) < wanted and number <= MAX_SCANNED_PAGES:
        page = await gitea_page(number, MAX_PAGE_LIMIT)
        visible.extend(env.repos.filter(page.items, key=lambda r: r.get("full_name", "")))
        gitea_more = page.has_more
        number += 1
    start = (page_number - 1) * limit
    return {
        "items": [repo_summary(env, r) for r in visible[start : start + limit]],
        "page": page_number,
        "limit": limit,
        "has_more": len(visible) > start + limit,
        "total": None,
    }


async def get_repository(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    data = await env.repository(owner, repo)
    summary = repo_summary(env, data)
    summary.update(
        website=data.get("website") or None,
        size_kb=data.get("size"),
        open_issues=data.get("open_issues_count"),
        open_pull_requests=data.get("open_pr_counter"),
        releases=data.get("release_counter"),
        forks=data.get("forks_count"),
        mirror=bool(data.get("mirror")),
        created_at=data.get("created_at"),
        has_issues=data.get("has_issues"),
        has_pull_requests=data.get("has_pull_requests"),
        topics=data.get("topics") or [],
    )
    return summary


async def list_branches(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    page = await env.page(
        "branches", arguments, f"Repository {owner}/{repo}", owner=owner, repo=repo
    )
    items = []
    for branch in page.items:
        commit = obj(branch.get("commit"))
        items.append(
            {
                "name": branch.get("name"),
                "commit_sha": commit.get("id"),
                "commit_message": text(commit.get("message")).split("\n", 1)[0],
                "commit_date": commit.get("timestamp"),
                "protected": bool(branch.get("protected")),
                "url": env.web_url(owner, repo, "src/branch", branch.get("name") or ""),
            }
        )
    return list_result(page, items)


async def list_tags(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    page = await env.page("tags", arguments, f"Repository {owner}/{repo}", owner=owner, repo=repo)
    items = [
        {
            "name": tag.get("name"),
            "commit_sha": obj(tag.get("commit")).get("sha"),
            "date": obj(tag.get("commit")).get("created"),
            "message": text(tag.get("message")).strip(),
            "url": env.web_url(owner, repo, "src/tag", tag.get("name") or ""),
        }
        for tag in page.items
    ]
    return list_result(page, items)


def tools(env: ToolEnv) -> list[Tool]:
    return [
        make_tool(
            env,
            "list_repositories",
            "List repositories",
            "Repositories you can read, recently updated first; query matches names and "
            "descriptions. Start here: owner and repo for the other tools. Paged.",
            schema(
                [],
                query={
                    "type": "string",
                    "maxLength": 200,
                },
                page=PAGE,
                limit=LIMIT,
            ),
            list_repositories,
        ),
        make_tool(
            env,
            "get_repository",
            "Get repository",
            "One repository: description, default branch, language, topics, counts of open "
            "issues, pull requests and releases.",
            repo_schema(),
            get_repository,
        ),
        make_tool(
            env,
            "list_branches",
            "List branches",
            "Branches with their latest commit. Paged.",
            repo_schema(page=PAGE, limit=LIMIT),
            list_branches,
        ),
        make_tool(
            env,
            "list_tags",
            "List tags",
            "Tags, newest first, with the commit each points to. Paged.",
            repo_schema(page=PAGE, limit=LIMIT),
            list_tags,
        ),
    ]
