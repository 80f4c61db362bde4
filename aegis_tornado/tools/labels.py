"""Labels and milestones: how a repository's issues are organised."""

from __future__ import annotations

from ..mcp.registry import Tool
from .base import LIMIT, PAGE, STATE, ToolEnv, list_result, make_tool, repo_schema, text


async def list_labels(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    page = await env.page("labels", arguments, f"Labels of {owner}/{repo}", owner=owner, repo=repo)
    items = [
        {
            "name": label.get("name"),
            "description": text(label.get("description")),
            "color": label.get("color"),
            "exclusive": bool(label.get("exclusive")),
            "archived": bool(label.get("is_archived")),
        }
        for label in page.items
    ]
    return list_result(page, items)


async def list_milestones(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    page = await env.page(
        "milestones",
        arguments,
        f"Milestones of {owner}/{repo}",
        {"state": arguments["state"]},
        owner=owner,
        repo=repo,
    )
    items = [
        {
            "title": ms.get("title"),
            "description": text(ms.get("description")),
            "state": ms.get("state"),
            "open_issues": ms.get("open_issues"),
            "closed_issues": ms.get("closed_issues"),
            "due_on": ms.get("due_on"),
            "closed_at": ms.get("closed_at"),
            "url": env.web_url(owner, repo, "milestone", ms.get("id")),
        }
        for ms in page.items
    ]
    return list_result(page, items)


def tools(env: ToolEnv) -> list[Tool]:
    return [
        make_tool(
            env,
            "list_labels",
            "List labels",
            "Issue labels with their descriptions. Paged.",
            repo_schema(page=PAGE, limit=LIMIT),
            list_labels,
        ),
        make_tool(
            env,
            "list_milestones",
            "List milestones",
            "Milestones by state, with issue counts and due dates. Paged.",
            repo_schema(state=STATE, page=PAGE, limit=LIMIT),
            list_milestones,
        ),
    ]
