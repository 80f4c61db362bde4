"""Gitea Actions: workflow runs, their jobs, and job logs.

CI logs are where secrets leak most (a debug ``env`` dump, a URL with credentials, a token
echoed by a deploy script), so a log goes through the sanitiser like every result and, before
that, through a CI-specific pass: the value of every ``NAME=value`` whose name says it is a
secret (``*_TOKEN``, ``*PASSWORD*``, ``*_API_KEY``...) is withheld, whatever its format.
"""

from __future__ import annotations

import re
from typing import Any

from ..gitea import Page
from ..mcp.registry import Tool, ToolError
from .base import (
    LIMIT,
    LINE,
    NUMBER,
    PAGE,
    REF,
    ToolEnv,
    checked,
    list_result,
    make_tool,
    obj,
    objs,
    repo_schema,
    text,
)
from .validation import validate_number, validate_ref

RUN_STATUS = {
    "type": "string",
    "enum": ["pending", "queued", "in_progress", "success", "failure", "skipped"],
}
EVENT = {"type": "string", "maxLength": 40}
_EVENT_NAME = re.compile(r"[a-z_]{1,40}")
#: The most log lines one call returns, whatever range is asked for.
MAX_LOG_LINES = 2000
TAIL = {"type": "integer", "minimum": 1, "maximum": MAX_LOG_LINES, "default": 200}
MAX_JOBS = 50
_LOG_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ")
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<name>\b[A-Za-z0-9_.-]*(?:TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|API_?KEY|"
    r"ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)[A-Za-z0-9_]*)"
    r"(?P<sep>\s*[=:]\s*[\"']?)(?P<value>[^\s\"']{4,})",
    re.IGNORECASE,
)
#: Values that are not secrets: Gitea's own mask, templates, and earlier redactions.
_NOT_SECRET = re.compile(r"^(?:\*+|\$\{\{?.*|\$[A-Za-z_]\w*|<[^>]*>|\[REDACTED.*)$")
CI_REDACTED = "[REDACTED:ci-secret]"


def redact_ci_secrets(log: str) -> tuple[str, int]:
    """The log with the values of secret-named assignments withheld, and how many."""
    count = 0

    def replace(match: re.Match) -> str:
        nonlocal count
        if _NOT_SECRET.match(match.group("value")):
            return match.group(0)
        count += 1
        return match.group("name") + match.group("sep") + CI_REDACTED

    return _SECRET_ASSIGNMENT.sub(replace, log), count


async def _object_page(
    env: ToolEnv,
    endpoint: str,
    key: str,
    arguments: dict[str, Any],
    what: str,
    params: dict[str, Any],
    **path: Any,
) -> Page:
    """A page of an Actions list: Gitea wraps these in ``{total_count, <key>: [...]}``."""
    page, limit = arguments["page"], arguments["limit"]
    data = await env.gitea(
        env.client.get_json(endpoint, params={**params, "page": page, "limit": limit}, **path),
        what,
        (path["owner"], path["repo"]),
    )
    items = objs(data.get(key))
    total = data.get("total_count")
    total = total if isinstance(total, int) and not isinstance(total, bool) else None
    has_more = page * limit < total if total is not None else len(items) >= limit
    return Page(items=items, page=page, limit=limit, has_more=has_more, total=total)


def run_summary(env: ToolEnv, owner: str, repo: str, data: dict[str, Any]) -> dict[str, Any]:
    number = data.get("run_number")
    return {
        "run_id": data.get("id"),
        "number": number,
        "title": text(data.get("display_title")),
        "workflow": text(data.get("path")).split("@", 1)[0],
        "event": data.get("event"),
        "status": data.get("status"),
        "conclusion": data.get("conclusion"),
        "branch": data.get("head_branch"),
        "sha": data.get("head_sha"),
        "actor": obj(data.get("actor")).get("login"),
        "started_at": data.get("started_at"),
        "completed_at": data.get("completed_at"),
        "url": env.link(
            data.get("html_url"), env.web_url(owner, repo, "actions/runs", number or "")
        ),
    }


async def list_workflow_runs(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    params: dict[str, Any] = {}
    if arguments.get("branch"):
        params["branch"] = checked(validate_ref, arguments["branch"], field="branch")
    if arguments.get("status"):
        params["status"] = arguments["status"]
    if arguments.get("event"):
        if not _EVENT_NAME.fullmatch(arguments["event"]):
            raise ToolError(
                "event must be an event name such as push, pull_request or schedule.",
                reason="invalid_arguments",
            )
        params["event"] = arguments["event"]
    page = await _object_page(
        env,
        "action_runs",
        "workflow_runs",
        arguments,
        f"Workflow runs of {owner}/{repo}",
        params,
        owner=owner,
        repo=repo,
    )
    return list_result(page, [run_summary(env, owner, repo, r) for r in page.items])


def job_summary(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "job_id": data.get("id"),
        "name": data.get("name"),
        "status": data.get("status"),
        "conclusion": data.get("conclusion"),
        "runner": data.get("runner_name"),
        "started_at": data.get("started_at"),
        "completed_at": data.get("completed_at"),
        "steps": [
            {
                "number": step.get("number"),
                "name": step.get("name"),
                "status": step.get("status"),
                "conclusion": step.get("conclusion"),
            }
            for step in objs(data.get("steps"))
        ],
    }


async def get_workflow_run(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    run_id = checked(validate_number, arguments["run_id"], field="run_id")
    what = f"Workflow run {run_id} of {owner}/{repo}"
    data = await env.gitea(
        env.client.get_json("action_run", owner=owner, repo=repo, run=run_id), what, (owner, repo)
    )
    await context.progress("reading the jobs")
    jobs = await env.gitea(
        env.client.get_json(
            "action_run_jobs",
            owner=owner,
            repo=repo,
            run=run_id,
            params={"page": 1, "limit": MAX_JOBS},
        ),
        what,
        (owner, repo),
    )
    result = run_summary(env, owner, repo, data)
    result["jobs"] = [job_summary(job) for job in objs(jobs.get("jobs"))]
    failed = [job["job_id"] for job in result["jobs"] if job["conclusion"] == "failure"]
    if failed:
        result["note"] = f"get_job_log with job_id {failed[0]} shows why it failed."
    return result


def _line_range(arguments: dict[str, Any], total: int) -> tuple[int, int]:
    """The 1-based, inclusive lines to show: the tail by default, or the range asked for."""
    start, end = arguments.get("start_line"), arguments.get("end_line")
    if start is None and end is None:
        tail = int(arguments.get("tail_lines") or 200)
        return max(1, total - tail + 1), total
    start = checked(validate_number, start or 1, field="start_line")
    end = checked(validate_number, end, field="end_line") if end is not None else None
    if end is not None and end < start:
        raise ToolError("end_line must not be before start_line.", reason="invalid_arguments")
    if start > max(total, 1):
        raise ToolError(
            f"start_line {start} is past the end of the log ({total} lines).",
            reason="invalid_arguments",
        )
    return start, min(end or total, total, start + MAX_LOG_LINES - 1)


async def get_job_log(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    job_id = checked(validate_number, arguments["job_id"], field="job_id")
    what = f"Log of job {job_id} in {owner}/{repo}"
    log = await env.gitea(
        env.client.get_text("action_job_logs", owner=owner, repo=repo, job_id=job_id),
        what,
        (owner, repo),
    )
    lines = log.splitlines()
    total = len(lines)
    first, last = _line_range(arguments, total)
    shown = [_LOG_STAMP.sub("", line, count=1) for line in lines[first - 1 : last]]
    body, withheld = redact_ci_secrets("\n".join(shown))
    result: dict[str, Any] = {
        "job_id": job_id,
        "total_lines": total,
        "start_line": first if total else 0,
        "end_line": last,
        "log": body,
    }
    if withheld:
        result["ci_secrets_withheld"] = withheld
    if first > 1:
        result["note"] = (
            f"Lines {first}-{last} of {total}; start_line and end_line show earlier lines."
        )
    return result


def tools(env: ToolEnv) -> list[Tool]:
    return [
        make_tool(
            env,
            "list_workflow_runs",
            "List workflow runs",
            "Actions runs, newest first; filter by branch, status, event (push, "
            "pull_request, schedule...). Paged.",
            repo_schema(branch=REF, status=RUN_STATUS, event=EVENT, page=PAGE, limit=LIMIT),
            list_workflow_runs,
        ),
        make_tool(
            env,
            "get_workflow_run",
            "Get workflow run",
            "One Actions run with its jobs and steps (job_id for get_job_log).",
            repo_schema("run_id", run_id=NUMBER),
            get_workflow_run,
        ),
        make_tool(
            env,
            "get_job_log",
            "Get job log",
            "An Actions job's log, secrets redacted: the last tail_lines, or start_line..end_line "
            "(at most 2000 lines).",
            repo_schema("job_id", job_id=NUMBER, tail_lines=TAIL, start_line=LINE, end_line=LINE),
            get_job_log,
        ),
    ]
