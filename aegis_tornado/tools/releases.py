"""Releases."""

from __future__ import annotations

from ..mcp.registry import Tool
from .base import LIMIT, PAGE, ToolEnv, list_result, make_tool, obj, repo_schema, text


async def list_releases(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    page = await env.page(
        "releases", arguments, f"Releases of {owner}/{repo}", owner=owner, repo=repo
    )
    items = [
        {
            "tag": release.get("tag_name"),
            "name": release.get("name"),
            "draft": bool(release.get("draft")),
            "prerelease": bool(release.get("prerelease")),
            "published_at": release.get("published_at"),
            "author": obj(release.get("author")).get("login"),
            "notes": text(release.get("body")),
            "url": env.web_url(owner, repo, "releases/tag", release.get("tag_name") or ""),
        }
        for release in page.items
    ]
    return list_result(page, items)


def tools(env: ToolEnv) -> list[Tool]:
    return [
        make_tool(
            env,
            "list_releases",
            "List releases",
            "Releases, newest first, with their notes. Paged.",
            repo_schema(page=PAGE, limit=LIMIT),
            list_releases,
        ),
    ]
