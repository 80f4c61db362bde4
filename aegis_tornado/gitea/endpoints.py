"""The Gitea API paths this server may call, and the only way to turn one into a URL path.

Callers never hand the client a raw path: they name an endpoint from `ENDPOINTS` and give its
parameters. Every value is percent-encoded as one path segment (``quote(value, safe="")``), so a
repository called ``a/../../admin`` cannot walk out of ``/repos/{owner}/{repo}``; only ``filepath``
keeps its ``/`` separators, and even there empty, ``.`` and ``..`` segments are refused.

The templates are the keys of Gitea 1.27's Swagger document (``paths``), relative to ``/api/v1``;
the test-suite checks each one against Gitea's OpenAPI document (``tests/gitea/data/``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import quote

__all__ = ["ENDPOINTS", "SHAPES", "build_path", "template_params"]

ENDPOINTS: Mapping[str, str] = MappingProxyType(
    {
        "version": "/version",
        "user": "/user",
        "repo_search": "/repos/search",
        "repo": "/repos/{owner}/{repo}",
        "branches": "/repos/{owner}/{repo}/branches",
        "tags": "/repos/{owner}/{repo}/tags",
        "tree": "/repos/{owner}/{repo}/git/trees/{sha}",
        "contents_root": "/repos/{owner}/{repo}/contents",
        "contents": "/repos/{owner}/{repo}/contents/{filepath}",
        "commits": "/repos/{owner}/{repo}/commits",
        "commit": "/repos/{owner}/{repo}/git/commits/{sha}",
        "commit_diff": "/repos/{owner}/{repo}/git/commits/{sha}.{diffType}",
        "issues": "/repos/{owner}/{repo}/issues",
        "issue": "/repos/{owner}/{repo}/issues/{index}",
        "issue_comments": "/repos/{owner}/{repo}/issues/{index}/comments",
        "issues_search": "/repos/issues/search",
        "pulls": "/repos/{owner}/{repo}/pulls",
        "pull": "/repos/{owner}/{repo}/pulls/{index}",
        "pull_files": "/repos/{owner}/{repo}/pulls/{index}/files",
        "pull_diff": "/repos/{owner}/{repo}/pulls/{index}.{diffType}",
        "releases": "/repos/{owner}/{repo}/releases",
        "action_runs": "/repos/{owner}/{repo}/actions/runs",
        "action_run": "/repos/{owner}/{repo}/actions/runs/{run}",
        "action_run_jobs": "/repos/{owner}/{repo}/actions/runs/{run}/jobs",
        "action_job_logs": "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs",
        "commit_status": "/repos/{owner}/{repo}/commits/{ref}/status",
        "compare": "/repos/{owner}/{repo}/compare/{basehead}",
        "compare_diff": "/repos/{owner}/{repo}/compare/{basehead}",
        "wiki_pages": "/repos/{owner}/{repo}/wiki/pages",
        "wiki_page": "/repos/{owner}/{repo}/wiki/page/{pageName}",
        "labels": "/repos/{owner}/{repo}/labels",
        "milestones": "/repos/{owner}/{repo}/milestones",
    }
)

# What a 200 body looks like, so the client can reject a surprising shape at the boundary:
# "object", "array", "object_or_array" (contents: file or directory), "search" ({ok, data:[...]}),
# "tree" (object whose entries page with per_page) and "text" (plain-text diff or patch).
SHAPES: Mapping[str, str] = MappingProxyType(
    {
        "version": "object",
        "user": "object",
        "repo_search": "search",
        "repo": "object",
        "branches": "array",
        "tags": "array",
        "tree": "tree",
        "contents_root": "array",
        "contents": "object_or_array",
        "commits": "array",
        "commit": "object",
        "commit_diff": "text",
        "issues": "array",
        "issue": "object",
        "issue_comments": "array",
        "issues_search": "array",
        "pulls": "array",
        "pull": "object",
        "pull_files": "array",
        "pull_diff": "text",
        "releases": "array",
        "action_runs": "object",  # {total_count, workflow_runs}: paged by the tool
        "action_run": "object",
        "action_run_jobs": "object",  # {total_count, jobs}
        "action_job_logs": "text",
        "commit_status": "object",
        "compare": "object",
        "compare_diff": "text",  # with output=diff
        "wiki_pages": "array",
        "wiki_page": "object",
        "labels": "array",
        "milestones": "array",
    }
)

_PARAM_RE = re.compile(r"\{([A-Za-z_]+)\}")
_DIFF_TYPES = frozenset({"diff", "patch"})


def template_params(endpoint: str) -> tuple[str, ...]:
    """The path parameter names of ``endpoint``, in template order."""
    return tuple(_PARAM_RE.findall(_template(endpoint)))


def _template(endpoint: str) -> str:
    try:
        return ENDPOINTS[endpoint]
    except KeyError:
        raise ValueError(f"unknown Gitea endpoint {endpoint!r}") from None


def _encode(name: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"path parameter {name!r} must be a string or an integer")
    if name == "index":
        # Issue and pull request numbers are positive integers; "5" is accepted for convenience.
        text = str(value)
        if not text.isdigit() or int(text) < 1:
            raise ValueError("path parameter 'index' must be a positive integer")
        return str(int(text))
    text = str(value)
    if text == "":
        raise ValueError(f"path parameter {name!r} must not be empty")
    if name == "diffType":
        if text not in _DIFF_TYPES:
            raise ValueError("path parameter 'diffType' must be 'diff' or 'patch'")
        return text
    if name == "filepath":
        segments = text.split("/")
        if any(seg in ("", ".", "..") for seg in segments):
            raise ValueError(
                "path parameter 'filepath' must be a relative path without empty, '.' or '..' segments"
            )
        return quote(text, safe="/")
    if text in (".", ".."):
        raise ValueError(f"path parameter {name!r} must not be '.' or '..'")
    return quote(text, safe="")


def build_path(endpoint: str, **params: object) -> str:
    """Fill ``endpoint``'s template, percent-encoding every parameter.

    Returns the path relative to ``/api/v1`` (e.g. ``/repos/o%20x/r/contents/a/b.md``).
    Raises ``ValueError`` for an unknown endpoint, a missing or unexpected parameter, or a value
    that is not a plain segment (these are programming errors, not Gitea's answers).
    """
    template = _template(endpoint)
    wanted = set(template_params(endpoint))
    given = set(params)
    if wanted != given:
        missing = sorted(wanted - given)
        extra = sorted(given - wanted)
        raise ValueError(
            f"endpoint {endpoint!r} takes path parameters {sorted(wanted)}"
            f" (missing {missing}, unexpected {extra})"
        )
    return _PARAM_RE.sub(lambda m: _encode(m.group(1), params[m.group(1)]), template)
