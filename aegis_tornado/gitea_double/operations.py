"""The double's Actions runs (with jobs, steps and logs), commit statuses and wiki pages.

Lighthouse gets a small CI history: green runs on ``main``, a failing run on
``feature/http2-probes`` whose log leaks a token (the product must hand it back redacted), a
scheduled run, a run still in progress; the statuses Actions posts for those commits; and a
wiki whose runbook page also carries a pasted secret.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from .dataset import Repo
    from .render import Ctx

#: What the failing run's log leaks: a GitHub token, in a form CI tools really print.
LEAKED_TOKEN = "ghp_" + "R8kq2VnX7tL0wP4sY9dA3fH6jM1cB5zE8gK2"
LEAKED_PASSWORD = "s3cr3t-Registry-pass"


@dataclass
class Step:
    number: int
    name: str
    conclusion: str | None  # None while it has not finished
    seconds: int
    output: list[str]


@dataclass
class Job:
    id: int
    name: str
    steps: list[Step]
    runner: str = "northwind-runner-1"

    def status(self) -> str:
        return "completed" if all(s.conclusion for s in self.steps) else "in_progress"

    def conclusion(self) -> str | None:
        if self.status() != "completed":
            return None
        return "failure" if any(s.conclusion == "failure" for s in self.steps) else "success"


@dataclass
class Run:
    id: int
    number: int
    title: str
    workflow: str  # file name under .gitea/workflows
    event: str
    branch: str
    sha: str
    actor: str
    started: datetime
    jobs: list[Job] = field(default_factory=list)

    def status(self) -> str:
        return "completed" if all(j.status() == "completed" for j in self.jobs) else "in_progress"

    def conclusion(self) -> str | None:
        if self.status() != "completed":
            return None
        conclusions = [j.conclusion() for j in self.jobs]
        return "failure" if "failure" in conclusions else "success"

    def completed(self) -> datetime | None:
        if self.status() != "completed":
            return None
        return self.started + timedelta(seconds=sum(job_seconds(j) for j in self.jobs))


def job_seconds(job: Job) -> int:
    return sum(step.seconds for step in job.steps)


@dataclass
class WikiPage:
    title: str  # as shown; the sub_url is the title with spaces as "-"
    content: str
    author: str
    when: datetime
    sha: str
    message: str

    @property
    def sub_url(self) -> str:
        return self.title.replace(" ", "-")


def _ok(number: int, name: str, seconds: int, *lines: str) -> Step:
    return Step(number, name, "success", seconds, list(lines))


def _job(job_id: int, name: str, *steps: Step) -> Job:
    return Job(job_id, name, list(steps))


def _test_output(passed: int) -> list[str]:
    return [
        "python -m pytest -q",
        *[f"tests/test_{name}.py {'.' * 12}" for name in ("checks", "dns", "http", "alerts")],
        f"{passed} passed in 4.21s",
    ]


def add_operations(repo: Repo, when: datetime, branches: dict[str, str]) -> None:
    """Runs, statuses and wiki for ``repo`` (lighthouse); ``branches`` maps branch -> head sha."""
    ids = iter(range(101, 1000))
    job_ids = iter(range(501, 2000))

    def run(number: int, title: str, event: str, branch: str, hours: float, jobs: list[Job]):
        return Run(
            next(ids),
            number,
            title,
            "ci.yml",
            event,
            branch,
            branches[branch],
            "alice" if event != "pull_request" else "bob",
            when + timedelta(hours=hours),
            jobs,
        )

    def green_jobs(passed: int) -> list[Job]:
        return [
            _job(
                next(job_ids),
                "lint",
                _ok(1, "Set up job", 2, "runner: northwind-runner-1", "image: python:3.12"),
                _ok(2, "Checkout", 1, "Fetching the repository", "HEAD is now at main"),
                _ok(3, "ruff", 3, "ruff check .", "All checks passed!"),
            ),
            _job(
                next(job_ids),
                "test (3.12)",
                _ok(1, "Set up job", 2, "runner: northwind-runner-1"),
                _ok(2, "Install", 25, "pip install -e '.[test]'", "Successfully installed"),
                _ok(3, "pytest", 9, *_test_output(passed)),
            ),
        ]

    failing_test = _job(
        next(job_ids),
        "test (3.12)",
        _ok(1, "Set up job", 2, "runner: northwind-runner-1"),
        _ok(
            2,
            "Install",
            31,
            "pip install -e '.[test]'",
            f"Looking in indexes: https://ci:{LEAKED_PASSWORD}@pypi.northwind.example/simple",
            "Successfully installed lighthouse-1.3.0.dev0",
        ),
        Step(
            3,
            "pytest",
            "failure",
            14,
            [
                "python -m pytest -q",
                "env: GITHUB_MIRROR_URL=https://github.com/northwind/lighthouse.git",
                f"env: MIRROR_TOKEN={LEAKED_TOKEN}",
                "tests/test_http.py ....F...",
                "FAILED tests/test_http.py::test_http2_probe_follows_alpn - "
                "AssertionError: expected h2, got http/1.1",
                *[
                    f"  probe attempt {n}: ALPN offered h2, server chose http/1.1"
                    for n in range(60)
                ],
                "1 failed, 57 passed in 6.02s",
                "Error: Process completed with exit code 1.",
            ],
        ),
    )
    repo.runs = [
        run(40, "Retry DNS lookups once", "push", "main", 0, green_jobs(55)),
        run(41, "HTTP/2 probes", "pull_request", "feature/http2-probes", 5, [failing_test]),
        run(42, "Nightly", "schedule", "main", 20, green_jobs(57)),
        run(
            43,
            "Document the alert router",
            "push",
            "main",
            30,
            [
                _job(
                    next(job_ids),
                    "test (3.12)",
                    _ok(1, "Set up job", 2, "runner: northwind-runner-1"),
                    Step(2, "Install", None, 0, ["pip install -e '.[test]'"]),
                ),
            ],
        ),
    ]
    author = "alice"
    repo.wiki = [
        WikiPage(
            "Home",
            "# Lighthouse wiki\n\n- [[Deploy Guide]]\n- [[On-call Runbook]]\n- [[Release Process]]\n",
            author,
            when,
            "3f2a9c1e5b7d4a6c8e0f1a2b3c4d5e6f7a8b9c0d",
            "Start the wiki",
        ),
        WikiPage(
            "Deploy Guide",
            "# Deploy guide\n\n1. Tag the release.\n2. `make image`\n3. Roll out with "
            "`ansible-playbook deploy.yml`.\n",
            "bob",
            when + timedelta(days=2),
            "4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b",
            "Deploy guide",
        ),
        WikiPage(
            "On-call Runbook",
            "# On-call runbook\n\nWhen the pager fires, check the dashboard first.\n\n"
            "Pager service login (temporary, rotate me): "
            f"https://oncall:{LEAKED_PASSWORD}@pager.northwind.example/\n",
            "carol",
            when + timedelta(days=3),
            "5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c",
            "Runbook: first draft",
        ),
        WikiPage(
            "Release Process",
            "# Release process\n\nReleases are cut from `main` on Tuesdays.\n",
            author,
            when + timedelta(days=5),
            "6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d",
            "Release process",
        ),
    ]


# -- rendering (the shapes of Gitea 1.27's swagger definitions) ----------------------------


def _ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _omit_empty(data: dict[str, Any]) -> dict[str, Any]:
    """Gitea's structs mark these fields ``omitempty``: an unfinished run has no conclusion."""
    return {key: value for key, value in data.items() if value is not None}


def run_json(ctx: Ctx, repo: Repo, run: Run, user_ref) -> dict[str, Any]:
    base = f"{ctx.api}repos/{repo.full_name}/actions/runs/{run.id}"
    return _omit_empty(
        {
            "id": run.id,
            "run_number": run.number,
            "run_attempt": 1,
            "display_title": run.title,
            "event": run.event,
            "status": run.status(),
            "conclusion": run.conclusion(),
            "head_branch": run.branch,
            "head_sha": run.sha,
            "path": f"{run.workflow}@refs/heads/{run.branch}",
            "started_at": _ts(run.started),
            "completed_at": _ts(run.completed()),
            "actor": user_ref(ctx, run.actor),
            "trigger_actor": user_ref(ctx, run.actor),
            "repository_id": repo.id,
            "url": base,
            "html_url": f"{ctx.root}{repo.full_name}/actions/runs/{run.number}",
            "previous_attempt_url": None,
            "pull_requests": [],
        }
    )


def job_json(ctx: Ctx, repo: Repo, run: Run, job: Job) -> dict[str, Any]:
    started = run.started
    steps = []
    clock = started
    for step in job.steps:
        end = clock + timedelta(seconds=step.seconds)
        steps.append(
            _omit_empty(
                {
                    "number": step.number,
                    "name": step.name,
                    "status": "completed" if step.conclusion else "in_progress",
                    "conclusion": step.conclusion,
                    "started_at": _ts(clock),
                    "completed_at": _ts(end) if step.conclusion else None,
                }
            )
        )
        clock = end
    return _omit_empty(
        {
            "id": job.id,
            "run_id": run.id,
            "run_attempt": 1,
            "name": job.name,
            "head_branch": run.branch,
            "head_sha": run.sha,
            "status": job.status(),
            "conclusion": job.conclusion(),
            "labels": ["ubuntu-latest"],
            "runner_id": 1,
            "runner_name": job.runner,
            "created_at": _ts(started),
            "started_at": _ts(started),
            "completed_at": _ts(clock) if job.status() == "completed" else None,
            "steps": steps,
            "url": f"{ctx.api}repos/{repo.full_name}/actions/jobs/{job.id}",
            "run_url": f"{ctx.api}repos/{repo.full_name}/actions/runs/{run.id}",
            "html_url": f"{ctx.root}{repo.full_name}/actions/runs/{run.number}/jobs/0",
        }
    )


def job_log(run: Run, job: Job) -> str:
    """The job's log as Gitea serves it: one timestamped line per output line."""
    lines = []
    clock = run.started
    for step in job.steps:
        for n, text in enumerate(step.output):
            stamp = (clock + timedelta(milliseconds=250 * n)).strftime("%Y-%m-%dT%H:%M:%S.%f")
            lines.append(f"{stamp}0Z {text}")
        clock += timedelta(seconds=step.seconds)
    return "\n".join(lines) + "\n"


def status_json(ctx: Ctx, repo: Repo, run: Run, job: Job, number: int, user_ref) -> dict:
    conclusion = job.conclusion()
    state = conclusion or "pending"
    return {
        "id": number,
        "status": state,
        "context": f"{run.workflow.removesuffix('.yml')} / {job.name} ({run.event})",
        "description": {
            "success": "Successful in 38s",
            "failure": "Failing after 47s",
            "pending": "Has started running",
        }[state],
        "target_url": f"{ctx.root}{repo.full_name}/actions/runs/{run.number}/jobs/0",
        "url": f"{ctx.api}repos/{repo.full_name}/statuses/{run.sha}",
        "created_at": _ts(run.started),
        "updated_at": _ts(run.completed() or run.started),
        "creator": user_ref(ctx, run.actor),
    }


def combined_state(states: list[str]) -> str:
    """Gitea's rule: any error/failure wins, then pending, else success."""
    for state in ("error", "failure", "pending"):
        if state in states:
            return state
    return "success" if states else "pending"


def wiki_commit_json(page: WikiPage, email_of) -> dict[str, Any]:
    person = {"name": page.author, "email": email_of(page.author), "date": _ts(page.when)}
    return {"sha": page.sha, "message": page.message, "author": person, "commiter": person}


def wiki_meta_json(ctx: Ctx, repo: Repo, page: WikiPage, email_of) -> dict[str, Any]:
    return {
        "title": page.title,
        "sub_url": page.sub_url,
        "html_url": f"{ctx.root}{repo.full_name}/wiki/{quote(page.sub_url)}",
        "last_commit": wiki_commit_json(page, email_of),
    }


def wiki_page_json(ctx: Ctx, repo: Repo, page: WikiPage, email_of) -> dict[str, Any]:
    data = wiki_meta_json(ctx, repo, page, email_of)
    data.update(
        content_base64=base64.b64encode(page.content.encode()).decode(),
        commit_count=1,
        sidebar="",
        footer="",
    )
    return data
