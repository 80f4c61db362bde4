"""The repository wiki: its pages, and one page's text."""

from __future__ import annotations

import base64
import binascii
import unicodedata
from typing import Any

from ..mcp.registry import Tool, ToolError
from .base import LIMIT, PAGE, ToolEnv, list_result, make_tool, obj, repo_schema, text

PAGE_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "description": "From list_wiki_pages, or the title.",
}


def validate_page_name(value: Any) -> str:
    """A wiki page name: one path segment of printable text (the client encodes it)."""
    name = value.strip() if isinstance(value, str) else ""
    if (
        not name
        or len(name.encode("utf-8", "surrogatepass")) > 255
        or "/" in name
        or name in (".", "..")
        or any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in name)
    ):
        raise ToolError(
            "page_name must be a wiki page name such as 'Home' or 'Deploy-Guide' (no '/', "
            "no control characters, at most 255 bytes).",
            reason="invalid_arguments",
        )
    return name.replace(" ", "-")


def _last_commit(data: dict[str, Any]) -> dict[str, Any]:
    commit = obj(data.get("last_commit"))
    author = obj(commit.get("author"))
    return {
        "author": author.get("name"),
        "updated_at": author.get("date"),
        "message": text(commit.get("message")),
    }


def page_summary(env: ToolEnv, owner: str, repo: str, data: dict[str, Any]) -> dict[str, Any]:
    name = text(data.get("sub_url")) or text(data.get("title")).replace(" ", "-")
    return {
        "title": data.get("title"),
        "page_name": name,
        **_last_commit(data),
        "url": env.link(data.get("html_url"), env.web_url(owner, repo, "wiki", name)),
    }


async def list_wiki_pages(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    page = await env.page(
        "wiki_pages", arguments, f"The wiki of {owner}/{repo}", owner=owner, repo=repo
    )
    return list_result(page, [page_summary(env, owner, repo, p) for p in page.items])


async def get_wiki_page(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    name = validate_page_name(arguments["page_name"])
    what = f"Wiki page {name} of {owner}/{repo}"
    data = await env.gitea(
        env.client.get_json("wiki_page", owner=owner, repo=repo, pageName=name),
        what,
        (owner, repo),
    )
    try:
        content = base64.b64decode(text(data.get("content_base64")), validate=True)
    except (binascii.Error, ValueError):
        raise ToolError(
            f"Gitea sent a response the server could not use: {what} has no readable content.",
            reason="gitea_bad_response",
        ) from None
    result = page_summary(env, owner, repo, data)
    result["content"] = content.decode("utf-8", errors="replace")
    return result


def tools(env: ToolEnv) -> list[Tool]:
    return [
        make_tool(
            env,
            "list_wiki_pages",
            "List wiki pages",
            "Wiki pages and who changed each last. Paged.",
            repo_schema(page=PAGE, limit=LIMIT),
            list_wiki_pages,
        ),
        make_tool(
            env,
            "get_wiki_page",
            "Get wiki page",
            "One wiki page's Markdown text by page_name (long pages cut).",
            repo_schema("page_name", page_name=PAGE_NAME),
            get_wiki_page,
        ),
    ]
