"""list_workflow_runs, get_workflow_run, get_job_log: through the server, against the double."""

from __future__ import annotations

import pytest

from aegis_tornado.gitea_double.operations import LEAKED_PASSWORD, LEAKED_TOKEN
from aegis_tornado.tools.actions import redact_ci_secrets

from ..conftest import with_settings

LIGHTHOUSE = {"owner": "northwind", "repo": "lighthouse"}
FAILING_RUN, FAILING_JOB = 102, 501


@pytest.mark.gen_test
async def test_runs_are_listed_newest_first_and_filtered(call, gitea):
    runs = await call("list_workflow_runs", **LIGHTHOUSE)
    assert [r["number"] for r in runs["items"]] == [43, 42, 41, 40]
    assert (runs["total"], runs["has_more"], runs["page"], runs["limit"]) == (4, False, 1, 30)
    newest = runs["items"][0]
    assert newest["status"] == "in_progress" and newest["conclusion"] is None
    failing = runs["items"][2]
    assert failing["conclusion"] == "failure" and failing["branch"] == "feature/http2-probes"
    assert failing["url"] == "https://git.example.com/northwind/lighthouse/actions/runs/41"
    assert failing["workflow"] == "ci.yml" and failing["actor"] == "bob"

    paged = await call("list_workflow_runs", **LIGHTHOUSE, limit=3)
    assert len(paged["items"]) == 3 and paged["has_more"] is True
    second = await call("list_workflow_runs", **LIGHTHOUSE, limit=3, page=2)
    assert [r["number"] for r in second["items"]] == [40] and second["has_more"] is False

    by_branch = await call("list_workflow_runs", **LIGHTHOUSE, branch="feature/http2-probes")
    assert [r["number"] for r in by_branch["items"]] == [41]
    by_status = await call("list_workflow_runs", **LIGHTHOUSE, status="success")
    assert [r["number"] for r in by_status["items"]] == [42, 40]
    by_event = await call("list_workflow_runs", **LIGHTHOUSE, event="schedule")
    assert [r["number"] for r in by_event["items"]] == [42]
    queries = [dict(r.query) for r in gitea.double.requests if r.path.endswith("/actions/runs")]
    assert {"branch": "feature/http2-probes", "page": "1", "limit": "30"} in queries
    assert "status" in await call.error("list_workflow_runs", **LIGHTHOUSE, status="weird")
    assert "branch" in await call.error("list_workflow_runs", **LIGHTHOUSE, branch="a..b")


@pytest.mark.gen_test
async def test_a_run_comes_with_its_jobs_and_steps(call):
    run = await call("get_workflow_run", **LIGHTHOUSE, run_id=FAILING_RUN)
    assert run["number"] == 41 and run["conclusion"] == "failure"
    [job] = run["jobs"]
    assert job["job_id"] == FAILING_JOB and job["conclusion"] == "failure"
    assert [s["name"] for s in job["steps"]] == ["Set up job", "Install", "pytest"]
    assert job["steps"][2]["conclusion"] == "failure"
    assert f"job_id {FAILING_JOB}" in run["note"]
    green = await call("get_workflow_run", **LIGHTHOUSE, run_id=101)
    assert [j["name"] for j in green["jobs"]] == ["lint", "test (3.12)"] and "note" not in green
    assert "not found" in await call.error("get_workflow_run", **LIGHTHOUSE, run_id=9999)


@pytest.mark.gen_test
async def test_a_failing_log_comes_back_as_its_tail_with_secrets_redacted(call):
    log = await call("get_job_log", **LIGHTHOUSE, job_id=FAILING_JOB)
    assert log["total_lines"] == 71 and log["end_line"] == 71 and log["start_line"] == 1
    text = log["log"]
    assert "Error: Process completed with exit code 1." in text.splitlines()[-1]
    assert LEAKED_TOKEN not in text and LEAKED_PASSWORD not in text
    assert "MIRROR_TOKEN=[REDACTED" in text
    assert log["ci_secrets_withheld"] == 1  # MIRROR_TOKEN, whatever the format of its value
    assert "url-password" in log["sanitized"]["secrets_redacted"]
    assert not text.startswith("2026-")  # Gitea's timestamps are dropped

    tail = await call("get_job_log", **LIGHTHOUSE, job_id=FAILING_JOB, tail_lines=5)
    assert tail["start_line"] == 67 and len(tail["log"].splitlines()) == 5
    assert "start_line" in tail["note"]
    head = await call("get_job_log", **LIGHTHOUSE, job_id=FAILING_JOB, start_line=1, end_line=4)
    assert head["log"].splitlines()[0] == "runner: northwind-runner-1"
    assert LEAKED_PASSWORD not in head["log"] and "ci:" in head["log"]
    assert "past the end" in await call.error(
        "get_job_log", **LIGHTHOUSE, job_id=FAILING_JOB, start_line=500
    )
    assert "before" in await call.error(
        "get_job_log", **LIGHTHOUSE, job_id=FAILING_JOB, start_line=9, end_line=3
    )
    assert "not found" in await call.error("get_job_log", **LIGHTHOUSE, job_id=424242)


@with_settings(repo_denylist=("northwind/lighthouse",))
@pytest.mark.gen_test
async def test_a_denied_repository_is_not_found_and_gitea_never_hears_of_it(call, gitea):
    missing = await call.error("list_workflow_runs", owner="northwind", repo="no-such-repo")
    for tool, extra in (
        ("list_workflow_runs", {}),
        ("get_workflow_run", {"run_id": FAILING_RUN}),
        ("get_job_log", {"job_id": FAILING_JOB}),
    ):
        denied = await call.error(tool, **LIGHTHOUSE, **extra)
        assert denied == missing.replace("no-such-repo", "lighthouse")
    assert not [p for p in gitea.requested_paths() if "lighthouse" in p]


@with_settings(max_result_bytes=4000)
@pytest.mark.gen_test
async def test_a_long_log_is_cut_to_the_result_size(call):
    log = await call("get_job_log", **LIGHTHOUSE, job_id=FAILING_JOB, tail_lines=2000)
    assert log["truncated"] is True and len(log["log"]) < 4000


def test_ci_secret_assignments_are_withheld_but_masks_and_templates_stay():
    text, count = redact_ci_secrets(
        "DEPLOY_TOKEN=abc123def456 password: hunter2hunter2 API_KEY='k-1234567' "
        "GITEA_TOKEN=*** SECRET=${{ secrets.X }} tokenizer=ok PATH=/usr/bin"
    )
    assert count == 3
    assert "abc123def456" not in text and "hunter2hunter2" not in text and "k-1234567" not in text
    assert "GITEA_TOKEN=***" in text and "${{ secrets.X }}" in text and "PATH=/usr/bin" in text
