"""The double answers every endpoint the client uses with bodies Gitea 1.27's spec accepts.

Each case is fetched over real HTTP with the path built by ``build_path`` and validated against
the spec's response schema (closed objects, see ``spec.py``); declared response headers
(``X-Page``, ``X-HasMore``, ...) must be present with the declared type. The app fixture's teardown
additionally checks every request against the spec's templates and query parameters.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from tornado.httpclient import HTTPRequest

from aegis_tornado.gitea import ENDPOINTS, build_path

from . import spec
from .conftest import TOKEN

LH = {"owner": "northwind", "repo": "lighthouse"}
HEAD = "main"

# (case id, endpoint, path params, query, token, status)
CASES = [
    ("version", "version", {}, {}, TOKEN, 200),
    ("version-anonymous", "version", {}, {}, None, 200),
    ("user", "user", {}, {}, TOKEN, 200),
    ("repo-search", "repo_search", {}, {"q": "light", "limit": 3}, TOKEN, 200),
    ("repo-search-anonymous", "repo_search", {}, {"limit": 50, "page": 2}, None, 200),
    ("repo", "repo", LH, {}, TOKEN, 200),
    ("repo-private", "repo", {"owner": "northwind", "repo": "deploy-config"}, {}, TOKEN, 200),
    ("repo-empty", "repo", {"owner": "northwind", "repo": "empty-sandbox"}, {}, TOKEN, 200),
    ("repo-archived", "repo", {"owner": "northwind", "repo": "legacy-monitor"}, {}, None, 200),
    ("branches", "branches", LH, {"limit": 10}, TOKEN, 200),
    ("tags", "tags", LH, {}, TOKEN, 200),
    (
        "tree",
        "tree",
        {**LH, "sha": HEAD},
        {"recursive": "true", "per_page": 7, "page": 2},
        TOKEN,
        200,
    ),
    ("tree-past-end", "tree", {**LH, "sha": HEAD}, {"page": 9}, TOKEN, 200),
    ("tree-by-branch-with-slash", "tree", {**LH, "sha": "feature/http2-probes"}, {}, TOKEN, 200),
    ("contents-root", "contents_root", LH, {}, TOKEN, 200),
    ("contents-file", "contents", {**LH, "filepath": "README.md"}, {}, TOKEN, 200),
    (
        "contents-dir",
        "contents",
        {**LH, "filepath": "src/lighthouse/checks"},
        {"ref": "v1.2.0"},
        TOKEN,
        200,
    ),
    ("contents-binary", "contents", {**LH, "filepath": "docs/images/logo.png"}, {}, TOKEN, 200),
    ("commits", "commits", LH, {"limit": 5, "page": 2}, TOKEN, 200),
    (
        "commits-lean",
        "commits",
        LH,
        {"stat": "false", "files": "false", "verification": "false", "path": "docs/alerting.md"},
        TOKEN,
        200,
    ),
    ("commit", "commit", {**LH, "sha": HEAD}, {}, TOKEN, 200),
    ("commit-diff", "commit_diff", {**LH, "sha": HEAD, "diffType": "diff"}, {}, TOKEN, 200),
    ("commit-patch", "commit_diff", {**LH, "sha": "v1.0.0", "diffType": "patch"}, {}, TOKEN, 200),
    ("issues", "issues", LH, {"state": "all", "limit": 50}, TOKEN, 200),
    ("issues-pulls", "issues", LH, {"type": "pulls", "state": "all"}, TOKEN, 200),
    ("issue", "issue", {**LH, "index": 3}, {}, TOKEN, 200),
    ("issue-is-a-pull", "issue", {**LH, "index": 47}, {}, TOKEN, 200),
    ("issue-comments", "issue_comments", {**LH, "index": 3}, {}, TOKEN, 200),
    ("issues-search", "issues_search", {}, {"q": "probe", "state": "all"}, TOKEN, 200),
    ("pulls", "pulls", LH, {"state": "all"}, TOKEN, 200),
    ("pull-merged", "pull", {**LH, "index": 12}, {}, TOKEN, 200),
    ("pull-draft", "pull", {**LH, "index": 66}, {}, TOKEN, 200),
    ("pull-files", "pull_files", {**LH, "index": 47}, {"limit": 1}, TOKEN, 200),
    ("pull-diff", "pull_diff", {**LH, "index": 47, "diffType": "diff"}, {}, TOKEN, 200),
    ("pull-patch", "pull_diff", {**LH, "index": 12, "diffType": "patch"}, {}, TOKEN, 200),
    ("releases", "releases", LH, {}, TOKEN, 200),
    ("action-runs", "action_runs", LH, {"limit": 2}, TOKEN, 200),
    (
        "action-runs-filtered",
        "action_runs",
        LH,
        {"branch": "feature/http2-probes", "status": "failure", "event": "pull_request"},
        TOKEN,
        200,
    ),
    ("action-run", "action_run", {**LH, "run": 102}, {}, TOKEN, 200),
    ("action-run-in-progress", "action_run", {**LH, "run": 104}, {}, TOKEN, 200),
    ("action-run-jobs", "action_run_jobs", {**LH, "run": 101}, {}, TOKEN, 200),
    ("action-job-logs", "action_job_logs", {**LH, "job_id": 501}, {}, TOKEN, 200),
    ("commit-status", "commit_status", {**LH, "ref": "feature/http2-probes"}, {}, TOKEN, 200),
    ("compare", "compare", {**LH, "basehead": "v1.1.0...main"}, {}, TOKEN, 200),
    (
        "compare-diff",
        "compare_diff",
        {**LH, "basehead": "main...feature/http2-probes"},
        {"output": "diff"},
        TOKEN,
        200,
    ),
    ("wiki-pages", "wiki_pages", LH, {}, TOKEN, 200),
    ("wiki-page", "wiki_page", {**LH, "pageName": "On-call-Runbook"}, {}, TOKEN, 200),
    ("labels", "labels", LH, {"limit": 3}, TOKEN, 200),
    ("milestones", "milestones", LH, {"state": "all"}, TOKEN, 200),
    ("action-run-missing", "action_run", {**LH, "run": 9999}, {}, TOKEN, 404),
    # errors
    ("repo-invisible", "repo", {"owner": "carol", "repo": "incident-response"}, {}, TOKEN, 404),
    (
        "commits-empty-repo",
        "commits",
        {"owner": "northwind", "repo": "empty-sandbox"},
        {},
        TOKEN,
        409,
    ),
    ("contents-missing", "contents", {**LH, "filepath": "nope.txt"}, {}, TOKEN, 404),
]


def test_cases_cover_every_endpoint():
    assert {case[1] for case in CASES} == set(ENDPOINTS)


def _typed(value: str, declared: dict) -> bool:
    if declared.get("type") == "integer":
        return value.lstrip("-").isdigit()
    if declared.get("type") == "boolean":
        return value in ("true", "false")
    return True


@pytest.mark.gen_test
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_response_matches_spec(case, http_client, http_server, http_port, double):
    _id, endpoint, params, query, token, status = case
    path = build_path(endpoint, **params)
    url = f"http://127.0.0.1:{http_port}/api/v1{path}" + (f"?{urlencode(query)}" if query else "")
    headers = {"Authorization": f"token {token}"} if token else {}
    response = await http_client.fetch(HTTPRequest(url, headers=headers), raise_error=False)
    assert response.code == status, response.body[:300]
    template = ENDPOINTS[endpoint]
    declared = spec.response(template, status)
    schema = declared.get("schema")
    if status >= 400:
        assert response.headers["Content-Type"].startswith("application/json")
        body = json.loads(response.body)
        assert not spec.errors_of(spec.definition_validator("APIError"), body)
        assert body["url"].endswith("/api/swagger")
        if status == 409:
            assert body["message"] == "Git Repository is empty."
        return
    if schema == {"type": "string"}:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.body.decode().startswith(("diff --git", "From "))
        return
    if endpoint in ("action_job_logs", "compare_diff"):  # text, with no schema in the spec
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.body.decode().startswith(("20", "diff --git"))
        return
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.body)
    if endpoint == "contents" and isinstance(body, list):
        # The operation's summary says a directory yields "a list of entries", but its 200
        # schema only names ContentsResponse; the list schema is the one of /contents.
        template = ENDPOINTS["contents_root"]
    problems = spec.errors_of(spec.response_validator(template, status), body)
    assert not problems, problems
    for name, header in declared.get("headers", {}).items():
        assert name in response.headers, f"{name} missing"
        assert _typed(response.headers[name], header), f"{name}: {response.headers[name]!r}"


@pytest.mark.gen_test
async def test_the_validator_can_fail(http_client, http_server, http_port):
    """Guard against a vacuous oracle: real bodies with one field broken must be rejected."""
    url = f"http://127.0.0.1:{http_port}/api/v1/repos/northwind/lighthouse"
    response = await http_client.fetch(
        HTTPRequest(url, headers={"Authorization": f"token {TOKEN}"})
    )
    body = json.loads(response.body)
    v = spec.response_validator(ENDPOINTS["repo"])
    assert not spec.errors_of(v, body)
    for mutate in (
        lambda b: b.update(private="no"),
        lambda b: b.update(created_at="yesterday"),
        lambda b: b.update(unexpected_field=1),
        lambda b: b["owner"].update(id="6"),
        lambda b: b.update(name=None),
    ):
        broken = json.loads(response.body)
        mutate(broken)
        assert spec.errors_of(v, broken), "the schema accepted a broken body"
