"""What lies between two refs, and what CI says about a commit."""

from __future__ import annotations

from typing import Any

from ..mcp.registry import Tool
from .base import REF, ToolEnv, checked, make_tool, obj, objs, repo_schema, text
from .commits import commit_summary
from .diffs import filter_diff
from .sanitize import truncate_utf8
from .validation import validate_ref

MAX_COMMITS = 50
MAX_STATUSES = 50


async def compare_refs(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    base = checked(validate_ref, arguments["base"], field="base")
    head = checked(validate_ref, arguments["head"], field="head")
    what = f"The comparison {base}...{head} in {owner}/{repo}"
    basehead = f"{base}...{head}"
    data = await env.gitea(
        env.client.get_json("compare", owner=owner, repo=repo, basehead=basehead),
        what,
        (owner, repo),
    )
    commits = objs(data.get("commits"))
    files: dict[str, str | None] = {}
    for commit in commits:
        for changed in objs(commit.get("files")):
            name = changed.get("filename")
            if isinstance(name, str):
                files[name] = changed.get("status")
    await context.progress("reading the diff")
    diff = await env.gitea(
        env.client.get_text(
            "compare_diff", owner=owner, repo=repo, basehead=basehead, params={"output": "diff"}
        ),
        what,
        (owner, repo),
    )
    diff, omitted = filter_diff(diff, env.paths)
    diff, cut = truncate_utf8(diff, env.max_result_bytes // 2)
    total = data.get("total_commits")
    result: dict[str, Any] = {
        "base": base,
        "head": head,
        "total_commits": total if isinstance(total, int) else len(commits),
        "commits": [commit_summary(env, owner, repo, c) for c in commits[:MAX_COMMITS]],
        "files": [{"path": path, "status": status} for path, status in files.items()],
        "diff": diff,
        "diff_truncated": cut,
        "url": env.web_url(owner, repo, "compare", basehead),
    }
    if omitted:
        result["diff_omitted_by_policy"] = omitted
    if len(commits) > MAX_COMMITS:
        result["commits_note"] = f"Only the first {MAX_COMMITS} of {len(commits)} commits."
    if cut:
        result["note"] = f"The diff was cut; see the full comparison at {result['url']}"
    return result


async def get_commit_status(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    ref = checked(validate_ref, arguments["ref"])
    what = f"The status of {ref} in {owner}/{repo}"
    data = await env.gitea(
        env.client.get_json(
            "commit_status",
            owner=owner,
            repo=repo,
            ref=ref,
            params={"page": 1, "limit": MAX_STATUSES},
        ),
        what,
        (owner, repo),
    )
    sha = text(data.get("sha"))
    statuses = [
        {
            "context": s.get("context"),
            "state": s.get("status"),
            "description": s.get("description"),
            "updated_at": s.get("updated_at"),
            "url": env.link(s.get("target_url"), ""),
        }
        for s in objs(data.get("statuses"))
    ]
    result: dict[str, Any] = {
        "ref": ref,
        "sha": sha,
        "state": data.get("state"),
        "total": data.get("total_count"),
        "statuses": statuses,
        "failing": [s["context"] for s in statuses if s["state"] in ("failure", "error")],
    }
    if sha:
        await context.progress("reading the workflow runs")
        runs = await env.gitea(
            env.client.get_json(
                "action_runs",
                owner=owner,
                repo=repo,
                params={"head_sha": sha, "page": 1, "limit": 10},
            ),
            what,
            (owner, repo),
        )
        result["runs"] = [
            {
                "run_id": run.get("id"),
                "title": run.get("display_title"),
                "status": run.get("status"),
                "conclusion": run.get("conclusion"),
                "actor": obj(run.get("actor")).get("login"),
            }
            for run in objs(runs.get("workflow_runs"))
        ]
    return result


def tools(env: ToolEnv) -> list[Tool]:
    return [
        make_tool(
            env,
            "compare_refs",
            "Compare refs",
            "Commits, changed files and the diff (capped) from base to head.",
            repo_schema("base", "head", base=REF, head=REF),
            compare_refs,
        ),
        make_tool(
            env,
            "get_commit_status",
            "Get commit status",
            "Combined CI state of a branch, tag or commit: status checks and Actions runs.",
            repo_schema("ref", ref=REF),
            get_commit_status,
        ),
    ]
