"""``search`` and ``fetch``: the pair ChatGPT's deep research and company knowledge call.

``search(query)`` returns ``{"results": [{"id", "title", "url"}]}`` and ``fetch(id)`` returns
``{"id", "title", "text", "url", "metadata"}``. Ids say what they are and where:

    repo:OWNER/REPO            issue:OWNER/REPO#N        pull:OWNER/REPO#N
    commit:OWNER/REPO@SHA      file:OWNER/REPO@REF:PATH
    wiki:OWNER/REPO:PAGE       run:OWNER/REPO#RUN_ID

(Names cannot contain ``/ @ # :``, and refs cannot contain ``:``, so ids parse unambiguously.)
Gitea has no code-search API, so file search matches the query against file paths in the most
relevant repositories; wiki pages and Actions runs are matched by title in the same
repositories.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ..gitea import MAX_TREE_PER_PAGE
from ..mcp.registry import Tool, ToolError
from .actions import get_job_log, get_workflow_run
from .base import ToolEnv, checked, make_tool, obj, objs, schema, text
from .commits import get_commit
from .files import get_file_contents
from .issues import get_issue, get_pull_request
from .repos import get_repository
from .validation import (
    ValidationError,
    normalize_path,
    validate_number,
    validate_owner,
    validate_ref,
    validate_repo,
    validate_sha,
)
from .wiki import get_wiki_page, validate_page_name

RESULTS_PER_KIND = 10
PATH_SEARCH_REPOS = 4
_ID = re.compile(
    r"^(?P<kind>repo|issue|pull|commit|file|wiki|run):(?P<owner>[^/@#:]+)/(?P<repo>[^/@#:]+)"
    r"(?:#(?P<number>\d{1,10})|@(?P<ref>[^:]+)(?::(?P<path>.+))?|:(?P<page>.+))?$",
    re.S,
)
#: Lines of a failed job's log that fetching its run shows.
RUN_LOG_TAIL = 40


def _terms(query: str) -> list[str]:
    return [t for t in re.split(r"[\s/]+", query.lower()) if t]


async def _search_repositories(env: ToolEnv, query: str) -> list[dict]:
    page = await env.gitea(
        env.client.get_page(
            "repo_search",
            page=1,
            limit=RESULTS_PER_KIND,
            params={"q": query, "includeDesc": "true"},
        ),
        "Repository search",
    )
    return env.repos.filter(page.items, key=lambda r: r.get("full_name", ""))


async def _search_issues(env: ToolEnv, query: str) -> list[dict]:
    page = await env.gitea(
        env.client.get_page(
            "issues_search", page=1, limit=RESULTS_PER_KIND, params={"q": query, "state": "all"}
        ),
        "Issue search",
    )
    return [
        i
        for i in page.items
        if env.repos.allows_full_name(obj(i.get("repository")).get("full_name"))
    ]


async def _candidates(env: ToolEnv, repositories: list[dict]) -> list[dict]:
    """The matching and the most recently updated repositories, where file paths, wiki pages
    and runs are searched."""
    recent = await env.gitea(
        env.client.get_page(
            "repo_search",
            page=1,
            limit=PATH_SEARCH_REPOS,
            params={"sort": "updated", "order": "desc"},
        ),
        "Repository list",
    )
    candidates: dict[str, dict] = {}
    for repo in repositories + env.repos.filter(recent.items, key=lambda r: r.get("full_name")):
        if not repo.get("empty") and len(candidates) < PATH_SEARCH_REPOS:
            candidates.setdefault(str(repo.get("full_name")), repo)
    return list(candidates.values())


async def _search_paths(env: ToolEnv, query: str, candidates: list[dict]) -> list[dict]:
    """File paths containing every query term (Gitea has no code search)."""
    terms = _terms(query)

    async def one(repo: dict) -> list[dict]:
        owner, name = str(repo["full_name"]).split("/", 1)
        branch = str(repo.get("default_branch") or "main")
        tree = await env.gitea(
            env.client.get_tree(owner, name, branch, recursive=True, per_page=MAX_TREE_PER_PAGE),
            f"Files of {owner}/{name}",
        )
        hits = []
        for entry in tree.items:
            path = text(entry.get("path"))
            if (
                entry.get("type") == "blob"
                and all(t in path.lower() for t in terms)
                and not env.paths.is_sensitive(path)
            ):
                hits.append({"owner": owner, "repo": name, "ref": branch, "path": path})
        return hits

    found = await asyncio.gather(*(one(r) for r in candidates), return_exceptions=True)
    hits = [hit for result in found if isinstance(result, list) for hit in result]
    return hits[:RESULTS_PER_KIND]


async def _search_wiki_and_runs(env: ToolEnv, query: str, candidates: list[dict]) -> list[dict]:
    """Wiki pages and Actions runs whose title holds every query term."""
    terms = _terms(query)

    def matches(title: Any) -> bool:
        return isinstance(title, str) and all(t in title.lower() for t in terms)

    async def one(repo: dict) -> list[dict]:
        owner, name = str(repo["full_name"]).split("/", 1)
        answers: tuple[Any, ...] = await asyncio.gather(
            env.client.get_page("wiki_pages", page=1, limit=50, owner=owner, repo=name),
            env.client.get_json(
                "action_runs", owner=owner, repo=name, params={"page": 1, "limit": 30}
            ),
            return_exceptions=True,
        )
        pages, runs = answers
        hits: list[dict] = []
        for page in pages.items if not isinstance(pages, BaseException) else []:
            if matches(page.get("title")):
                page_name = text(page.get("sub_url")) or text(page.get("title"))
                hits.append(
                    {
                        "id": f"wiki:{owner}/{name}:{page_name}",
                        "title": f"{page.get('title')} (wiki of {owner}/{name})",
                        "url": env.web_url(owner, name, "wiki", page_name),
                    }
                )
        found_runs = [] if isinstance(runs, BaseException) else objs(runs.get("workflow_runs"))
        for run in found_runs:
            if matches(run.get("display_title")):
                hits.append(
                    {
                        "id": f"run:{owner}/{name}#{run.get('id')}",
                        "title": f"{owner}/{name} CI run #{run.get('run_number')}: "
                        f"{run.get('display_title')} ({run.get('conclusion') or run.get('status')})",
                        "url": env.web_url(owner, name, "actions/runs", run.get("run_number")),
                    }
                )
        return hits

    found = await asyncio.gather(*(one(r) for r in candidates), return_exceptions=True)
    hits = [hit for result in found if isinstance(result, list) for hit in result]
    return hits[:RESULTS_PER_KIND]


async def search(env: ToolEnv, arguments: dict, context) -> dict:
    query = arguments["query"].strip()
    if not query:
        raise ToolError("query must contain words to search for.", reason="invalid_arguments")
    await context.progress("searching repositories and issues")
    searched: tuple[Any, ...] = await asyncio.gather(
        _search_repositories(env, query), _search_issues(env, query), return_exceptions=True
    )
    repos, issues = searched
    if isinstance(repos, BaseException) and isinstance(issues, BaseException):
        raise repos  # Gitea is failing: do not spend another deadline on the file paths
    await context.progress("searching file paths, wiki pages and runs")
    candidates: list[dict] = []
    candidates_failed: BaseException | None = None
    try:
        candidates = await _candidates(env, repos if isinstance(repos, list) else [])
    except ToolError as error:
        candidates_failed = error
    found: tuple[Any, ...] = await asyncio.gather(
        _search_paths(env, query, candidates),
        _search_wiki_and_runs(env, query, candidates),
        return_exceptions=True,
    )
    path_hits, title_hits = found
    if candidates_failed is not None:
        path_hits = candidates_failed
    outcomes = [repos, issues, path_hits]
    if all(isinstance(o, BaseException) for o in outcomes):
        raise outcomes[0]
    results = []
    for repo in repos if isinstance(repos, list) else []:
        full_name = str(repo.get("full_name"))
        owner, name = full_name.split("/", 1)
        description = text(repo.get("description"))
        results.append(
            {
                "id": f"repo:{full_name}",
                "title": f"{full_name}" + (f" - {description}" if description else ""),
                "url": env.repo_url(owner, name),
            }
        )
    for issue in issues if isinstance(issues, list) else []:
        full_name = str(obj(issue.get("repository")).get("full_name"))
        owner, name = full_name.split("/", 1)
        kind = "pull" if issue.get("pull_request") else "issue"
        number = issue.get("number")
        results.append(
            {
                "id": f"{kind}:{full_name}#{number}",
                "title": f"{full_name}#{number}: {issue.get('title')}",
                "url": env.web_url(
                    owner, name, "pulls" if kind == "pull" else "issues", str(number)
                ),
            }
        )
    for hit in path_hits if isinstance(path_hits, list) else []:
        results.append(
            {
                "id": f"file:{hit['owner']}/{hit['repo']}@{hit['ref']}:{hit['path']}",
                "title": f"{hit['path']} in {hit['owner']}/{hit['repo']}",
                "url": env.src_url(hit["owner"], hit["repo"], hit["ref"], hit["path"]),
            }
        )
    results.extend(title_hits if isinstance(title_hits, list) else [])
    return {"results": results}


def parse_id(document_id: str) -> dict[str, Any]:
    """The parts of an id, each validated; ToolError for anything else."""
    match = _ID.match(document_id.strip())
    if not match:
        raise ToolError(
            "Unknown id. Use an id returned by search, such as repo:OWNER/REPO, "
            "issue:OWNER/REPO#12, pull:OWNER/REPO#5, commit:OWNER/REPO@SHA, "
            "file:OWNER/REPO@REF:PATH, wiki:OWNER/REPO:PAGE or run:OWNER/REPO#RUN_ID.",
            reason="invalid_arguments",
        )
    kind = match["kind"]
    parts: dict[str, Any] = {
        "kind": kind,
        "owner": checked(validate_owner, match["owner"]),
        "repo": checked(validate_repo, match["repo"]),
    }
    needs = {
        "repo": (),
        "issue": ("number",),
        "pull": ("number",),
        "commit": ("ref",),
        "file": ("ref", "path"),
        "wiki": ("page",),
        "run": ("number",),
    }[kind]
    for field in ("number", "ref", "path", "page"):
        if (match[field] is not None) != (field in needs):
            raise ToolError(
                f"Malformed {kind} id; use the id exactly as search returned it.",
                reason="invalid_arguments",
            )
    if "number" in needs:
        parts["number"] = checked(validate_number, int(match["number"]))
    if kind == "commit":
        parts["sha"] = checked(validate_sha, match["ref"])
    if kind == "file":
        parts["ref"] = checked(validate_ref, match["ref"])
        parts["path"] = checked(normalize_path, match["path"], allow_empty=False)
    if kind == "wiki":
        parts["page"] = validate_page_name(match["page"])
    return parts


async def fetch(env: ToolEnv, arguments: dict, context) -> dict:
    document_id = arguments["id"]
    parts = parse_id(document_id)
    kind, owner, repo = parts["kind"], parts["owner"], parts["repo"]
    base = {"owner": owner, "repo": repo}
    if kind == "file":
        doc = await get_file_contents(
            env, {**base, "path": parts["path"], "ref": parts["ref"]}, context
        )
        text = doc["text"] if doc["text"] is not None else f"({doc.get('note', 'no text')})"
        if doc.get("truncated") and doc.get("note"):
            text += f"\n\n[{doc['note']} Read the rest with get_file_contents.]"
        return _document(
            document_id,
            f"{parts['path']} in {owner}/{repo}",
            text,
            doc["url"],
            {
                "owner": owner,
                "repo": repo,
                "ref": doc["ref"],
                "path": doc["path"],
                "size": doc["size"],
                "binary": doc["binary"],
                "truncated": doc["truncated"],
                "total_lines": doc["total_lines"],
            },
        )
    if kind in ("issue", "pull"):
        handler = get_issue if kind == "issue" else get_pull_request
        doc = await handler(env, {**base, "number": parts["number"]}, context)
        text = _issue_text(doc) if kind == "issue" else _pull_text(doc)
        return _document(
            document_id,
            f"{owner}/{repo}#{doc['number']}: {doc['title']}",
            text,
            doc["url"],
            {
                "state": doc["state"],
                "author": doc["author"],
                "labels": doc.get("labels", []),
                "updated_at": doc.get("updated_at"),
            },
        )
    if kind == "wiki":
        doc = await get_wiki_page(env, {**base, "page_name": parts["page"]}, context)
        return _document(
            document_id,
            f"{doc['title']} (wiki of {owner}/{repo})",
            doc["content"],
            doc["url"],
            {"author": doc["author"], "updated_at": doc["updated_at"]},
        )
    if kind == "run":
        doc = await get_workflow_run(env, {**base, "run_id": parts["number"]}, context)
        return _document(
            document_id,
            f"{owner}/{repo} CI run #{doc['number']}: {doc['title']}",
            await _run_text(env, base, doc, context),
            doc["url"],
            {
                "status": doc["status"],
                "conclusion": doc["conclusion"],
                "branch": doc["branch"],
                "sha": doc["sha"],
                "event": doc["event"],
            },
        )
    if kind == "commit":
        doc = await get_commit(env, {**base, "sha": parts["sha"]}, context)
        text = f"{doc['message']}\n\nAuthor: {doc['author']} ({doc['date']})\n\n{doc['diff']}"
        return _document(
            document_id,
            f"{owner}/{repo}@{doc['sha'][:12]}: {doc['title']}",
            text,
            doc["url"],
            {"sha": doc["sha"], "author": doc["author"], "date": doc["date"]},
        )
    doc = await get_repository(env, base, context)
    readme = await _readme(env, owner, repo, doc, context)
    text = f"# {owner}/{repo}\n\n{doc['description']}\n\n{readme}".strip()
    return _document(
        document_id,
        f"{owner}/{repo}",
        text,
        doc["url"],
        {
            "default_branch": doc["default_branch"],
            "language": doc["language"],
            "stars": doc["stars"],
            "updated_at": doc["updated_at"],
            "private": doc["private"],
        },
    )


def _document(document_id: str, title: str, text: str, url: str, metadata: dict) -> dict:
    return {"id": document_id, "title": title, "text": text, "url": url, "metadata": metadata}


def _issue_text(doc: dict) -> str:
    lines = [f"{doc['title']} ({doc['state']}, by {doc['author']})", "", doc["body"]]
    for comment in doc["comment_list"]:
        lines += ["", f"--- {comment['author']} at {comment['created_at']}:", comment["body"]]
    return "\n".join(lines)


async def _run_text(env: ToolEnv, base: dict, doc: dict, context) -> str:
    """A run as text: its jobs and steps, and the end of each failed job's log."""
    lines = [
        f"{doc['title']}: {doc['conclusion'] or doc['status']} ({doc['event']} on "
        f"{doc['branch']} at {doc['sha']}, by {doc['actor']})"
    ]
    for job in doc["jobs"]:
        lines += ["", f"Job {job['name']}: {job['conclusion'] or job['status']}"]
        lines += [
            f"  {step['number']}. {step['name']}: {step['conclusion'] or step['status']}"
            for step in job["steps"]
        ]
        if job["conclusion"] == "failure":
            lines += ["", await _failed_log(env, base, job["job_id"], context)]
    return "\n".join(lines)


async def _failed_log(env: ToolEnv, base: dict, job_id: Any, context) -> str:
    """The end of a failed job's log, or why it is not shown. The id comes from Gitea's
    answer: one that is not a plausible job id is never put into a request."""
    if not isinstance(job_id, int) or isinstance(job_id, bool) or not 1 <= job_id < 2**31:
        return "(Gitea gave no usable job id: its log was not read)"
    try:
        log = await get_job_log(
            env, {**base, "job_id": job_id, "tail_lines": RUN_LOG_TAIL}, context
        )
    except ToolError as error:
        return f"(its log could not be read: {error})"
    return f"Last {RUN_LOG_TAIL} lines of its log:\n{log['log']}"


def _pull_text(doc: dict) -> str:
    files = "\n".join(f"  {f['status']}: {f['path']}" for f in doc["files"])
    return (
        f"{doc['title']} ({doc['state']}{', merged' if doc['merged'] else ''}, by "
        f"{doc['author']}; {doc['head']} -> {doc['base']})\n\n{doc['body']}\n\n"
        f"Changed files:\n{files}\n\n{doc['diff']}"
    )


async def _readme(env: ToolEnv, owner: str, repo: str, doc: dict, context) -> str:
    if doc["empty"]:
        return "(empty repository)"
    listing = await env.gitea(
        env.client.get_json("contents_root", owner=owner, repo=repo), f"Repository {owner}/{repo}"
    )
    names = []
    for entry in listing:
        if entry.get("type") == "file" and text(entry.get("name")).lower().startswith("readme"):
            try:
                path = normalize_path(entry.get("path"), allow_empty=False)
            except ValidationError:  # not a path Gitea would give: no README, then
                continue
            if not env.paths.is_sensitive(path):  # README.key is a key, not a README
                names.append(path)
    if not names:
        return ""
    readme = await get_file_contents(
        env, {"owner": owner, "repo": repo, "path": names[0], "ref": doc["default_branch"]}, context
    )
    return readme["text"] or ""


def tools(env: ToolEnv) -> list[Tool]:
    return [
        make_tool(
            env,
            "search",
            "Search Gitea",
            "Search repositories, issues, pull requests, file paths, wiki pages and CI runs for "
            "the query words. Returns {results: [{id, title, url}]}; pass an id to fetch to read "
            "one. Use specific words (names, error messages, file names).",
            schema(
                ["query"],
                query={
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 200,
                },
            ),
            search,
        ),
        make_tool(
            env,
            "fetch",
            "Fetch a document",
            "Read one search result in full by its id (repository with README, issue or pull "
            "request with discussion, commit with diff, file, wiki page, or CI run with its "
            "failed log). Returns {id, title, text, url, metadata}; cite url.",
            schema(
                ["id"],
                id={
                    "type": "string",
                    "minLength": 3,
                    "maxLength": 5000,
                    "description": "An id from search.",
                },
            ),
            fetch,
        ),
    ]
