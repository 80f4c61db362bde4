"""Commits and their diffs."""

from __future__ import annotations

from typing import Any

from ..mcp.registry import Tool
from .base import (
    LIMIT,
    PAGE,
    PATH,
    REF,
    SHA,
    ToolEnv,
    checked,
    gitea_sha,
    list_result,
    make_tool,
    obj,
    objs,
    optional_ref,
    repo_path,
    repo_schema,
    text,
)
from .diffs import read_diff
from .validation import validate_sha


def commit_summary(env: ToolEnv, owner: str, repo: str, data: dict[str, Any]) -> dict[str, Any]:
    commit = obj(data.get("commit"))
    author = obj(commit.get("author"))
    message = text(commit.get("message"))
    sha = text(data.get("sha"))
    return {
        "sha": sha,
        "title": message.split("\n", 1)[0],
        "author": author.get("name"),
        "date": author.get("date") or data.get("created"),
        "url": env.web_url(owner, repo, "commit", sha),
    }


async def list_commits(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    params: dict[str, Any] = {"stat": "false", "verification": "false", "files": "false"}
    ref = optional_ref(arguments)
    if ref:
        params["sha"] = ref
    path = repo_path(arguments)
    env.check_path(path)  # the history of a key file is refused like the key file
    if path:
        params["path"] = path
    page = await env.page(
        "commits",
        arguments,
        f"Commits of {ref or 'the default branch'} in {owner}/{repo}",
        params,
        owner=owner,
        repo=repo,
    )
    return list_result(page, [commit_summary(env, owner, repo, c) for c in page.items])


async def get_commit(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    sha = checked(validate_sha, arguments["sha"])
    what = f"Commit {sha} in {owner}/{repo}"
    data = await env.gitea(
        env.client.get_json(
            "commit", owner=owner, repo=repo, sha=sha, params={"verification": "false"}
        ),
        what,
        (owner, repo),
    )
    full_sha = gitea_sha(data.get("sha") or sha, what)
    await context.progress("reading the diff")
    diff = await read_diff(env, "commit_diff", what, owner=owner, repo=repo, sha=full_sha)
    result = commit_summary(env, owner, repo, data)
    stats = obj(data.get("stats"))
    commit = obj(data.get("commit"))
    result.update(
        message=text(commit.get("message")),
        committer=obj(commit.get("committer")).get("name"),
        parents=[p.get("sha") for p in objs(data.get("parents"))],
        stats={"additions": stats.get("additions"), "deletions": stats.get("deletions")},
        files=[
            {"path": f.get("filename"), "status": f.get("status")} for f in objs(data.get("files"))
        ],
        **diff,
    )
    if diff["diff_truncated"]:
        result["note"] = f"The diff was cut; see the full change at {result['url']}"
    return result


def tools(env: ToolEnv) -> list[Tool]:
    return [
        make_tool(
            env,
            "list_commits",
            "List commits",
            "Commits reachable from ref, newest first; path keeps those touching a file or "
            "directory. Paged.",
            repo_schema(ref=REF, path=PATH, page=PAGE, limit=LIMIT),
            list_commits,
        ),
        make_tool(
            env,
            "get_commit",
            "Get commit",
            "One commit: message, author, changed files and its diff (capped in size).",
            repo_schema("sha", sha=SHA),
            get_commit,
        ),
    ]
