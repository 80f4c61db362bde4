"""A misbehaving Gitea, end to end through the server: every tool call ends within the Gitea
client's deadline with a clear ``isError``, calls to Gitea stay bounded under concurrency,
nothing is left running, the next call works once Gitea recovers, and the Gitea token
appears in no result, error or log line.

Settings are small (``gitea_timeout`` 0.5 s, one retry, four connections), so the client's
deadline is about 1.3 s. Time bounds are "within the deadline" with generous slack, never
performance assertions. The log scrubber is not told the Gitea token (the ``registry``
fixture passes it to the client only), so the logs are checked for it for real.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from tornado.httpserver import HTTPServer

from aegis_tornado.assembly import gitea_tools
from aegis_tornado.gitea_double import make_double_app

from ..conftest import with_settings
from ..tools.conftest import GITEA_TOKEN, call, gitea, registry  # noqa: F401  (fixtures)
from .conftest import drained, wait_until

LIGHTHOUSE = {"owner": "northwind", "repo": "lighthouse"}
# max_calls_per_key: these tests load the pool from one key on purpose.
UPSTREAM = dict(gitea_timeout=0.5, gitea_retries=1, gitea_pool_size=4, max_calls_per_key=1000)
#: Slack on top of the client's deadline for a loaded CI machine.
SLACK = 2.5

#: One call of every kind of tool: single requests, lists, multi-request tools, search/fetch.
CALLS = [
    ("get_repository", LIGHTHOUSE),
    ("list_branches", LIGHTHOUSE),
    ("list_commits", LIGHTHOUSE),
    ("get_file_contents", {**LIGHTHOUSE, "path": "README.md", "ref": "main"}),
    ("get_file_tree", {**LIGHTHOUSE, "ref": "main", "recursive": True}),
    ("get_issue", {**LIGHTHOUSE, "number": 3}),
    ("get_pull_request", {**LIGHTHOUSE, "number": 12}),
    ("list_releases", LIGHTHOUSE),
    ("list_repositories", {}),
    ("search", {"query": "dns"}),
    ("fetch", {"id": "issue:northwind/lighthouse#3"}),
    ("fetch", {"id": "repo:northwind/lighthouse"}),
]


@pytest.fixture
def client_deadline(aegis_settings) -> float:
    client, _ = gitea_tools(aegis_settings, "http://127.0.0.1:9", None)
    client.close()
    return client.deadline


def own_tasks() -> list[asyncio.Task]:
    """Running tasks, less the HTTP connections kept alive between requests (ours and the
    double's): what a tool call or a Gitea request could leave behind."""
    return [
        task for task in asyncio.all_tasks() if "_server_request_loop" not in repr(task.get_coro())
    ]


def tool_durations(logs) -> list[tuple[str, float, str | None]]:
    return [(r["tool"], r["duration_ms"] / 1000, r.get("reason")) for r in logs.audit("tool_call")]


def assert_no_token(logs, *texts: str) -> None:
    for text in (*texts, logs.stdout_text(), logs.audit_text()):
        assert GITEA_TOKEN not in text


async def assert_recovers(call, gitea) -> None:
    gitea.faults.clear()
    for tool, arguments in CALLS:
        result = await call.raw(tool, **arguments)
        assert not result.get("isError"), (tool, result["content"][0]["text"])


# --- one fault at a time, every tool --------------------------------------------------------


@with_settings(**UPSTREAM)
@pytest.mark.parametrize(
    "kind, options, fragment",
    [
        ("hang", {"delay": 30}, "Gitea is unavailable"),
        ("slow", {"delay": 3}, "Gitea is unavailable"),
        ("status", {"status": 500}, "Gitea is unavailable"),
        ("status", {"status": 502}, "Gitea is unavailable"),
        ("status", {"status": 503, "headers": {"Retry-After": "30"}}, "Gitea is unavailable"),
        ("disconnect", {}, "Gitea is unavailable"),
        ("cut", {}, "Gitea is unavailable"),
        ("malformed", {}, "could not use"),
        ("truncated", {}, "could not use"),
        ("huge", {"size": 12 * 1024 * 1024}, "could not use"),
        ("drip", {"size": 200_000, "delay": 0.05}, "Gitea is unavailable"),
        ("status", {"status": 200, "body": "<html>502 Bad Gateway</html>"}, "could not use"),
        ("redirect", {"location": "http://169.254.169.254/latest/meta-data"}, "could not use"),
    ],
)
@pytest.mark.gen_test(timeout=120)
async def test_each_fault_gives_every_tool_a_clear_error_within_the_deadline(
    call, gitea, logs, client_deadline, kind, options, fragment
):
    gitea.faults.add(kind, **options)

    async def timed(tool, arguments):
        started = time.monotonic()
        message = await call.error(tool, **arguments)
        return tool, message, time.monotonic() - started

    # All at once (four connections for twelve calls): each still fails on its first request.
    outcomes = await asyncio.gather(*(timed(tool, arguments) for tool, arguments in CALLS))
    messages = []
    for tool, message, elapsed in outcomes:
        if "connections were busy" not in message:
            assert fragment in message, (tool, message)
        assert elapsed < client_deadline + SLACK, (tool, elapsed)
        messages.append(message)
    for tool, seconds, reason in tool_durations(logs):
        assert seconds < client_deadline + SLACK, (tool, seconds)
        assert reason.startswith("gitea_"), (tool, reason)
    await assert_recovers(call, gitea)
    assert_no_token(logs, *messages)


@with_settings(**UPSTREAM)
@pytest.mark.gen_test(timeout=60)
async def test_retries_stay_within_the_deadline(call, gitea, client_deadline):
    """A Gitea that keeps answering 502 is asked at most retries + 1 times per request, and a
    Retry-After longer than the deadline is not waited for."""
    gitea.faults.add("status", status=502)
    started = time.monotonic()
    await call.error("get_repository", **LIGHTHOUSE)
    assert time.monotonic() - started < client_deadline + SLACK
    assert len(gitea.requested_paths()) == 2  # gitea_retries=1
    gitea.faults.clear()
    gitea.double.clear_requests()
    gitea.faults.add("status", status=503, headers={"Retry-After": "3600"})
    started = time.monotonic()
    await call.error("list_tags", **LIGHTHOUSE)
    assert time.monotonic() - started < client_deadline + SLACK
    assert len(gitea.requested_paths()) == 1
    gitea.faults.clear()
    gitea.faults.add("status", status=502, times=1)  # one blip: retried, not reported
    assert (await call("list_tags", **LIGHTHOUSE))["items"]


# --- concurrency --------------------------------------------------------------------------


@with_settings(**UPSTREAM)
@pytest.mark.parametrize("fault", [{"kind": "hang", "delay": 30}, {"kind": "slow", "delay": 0.1}])
@pytest.mark.gen_test(timeout=120)
async def test_thirty_concurrent_calls_against_a_slow_gitea(
    call, gitea, logs, ctx, base_url, client_deadline, fault
):
    """A hanging Gitea (every call fails) and a slow one (each request 0.1 s, well within the
    0.5 s timeout, but 30 calls share four connections): every call ends, within the
    deadline of each of its Gitea requests; Gitea never sees more than four requests at once;
    then everything drains and the next calls work."""
    options = dict(fault)
    gitea.faults.add(options.pop("kind"), **options)
    gitea.double.reset_stats()
    tasks_before = len(own_tasks())
    calls = [CALLS[i % len(CALLS)] for i in range(30)]
    started = time.monotonic()
    results = await asyncio.gather(*(call.raw(tool, **arguments) for tool, arguments in calls))
    wall = time.monotonic() - started
    assert len(results) == 30
    for (tool, _), result in zip(calls, results, strict=False):
        text = result["content"][0]["text"]
        assert "internal error" not in text, (tool, text)
        if result.get("isError"):
            assert "Gitea is unavailable" in text, (tool, text)
    if fault["kind"] == "hang":
        assert all(r.get("isError") for r in results)
    # Four connections: the client's pool, whatever the load. (A hanging request ends in the
    # double a loop iteration after the client hangs up, so there its count may run behind.)
    pool = UPSTREAM["gitea_pool_size"]
    assert gitea.double.max_in_flight <= (pool if fault["kind"] == "slow" else 2 * pool)
    assert len(gitea.requested_paths()) <= 30 * 3 * 2  # 3 requests a call, 1 retry each
    # A tool makes at most three Gitea requests in a row (pull request: pull, files, diff).
    for tool, seconds, _ in tool_durations(logs):
        assert seconds < 3 * client_deadline + SLACK, (tool, seconds)
    assert wall < 3 * client_deadline + 2 * SLACK, wall
    # Nothing left behind: requests and tool calls drained, Gitea's side idle, no stray task.
    gitea.faults.clear()
    assert await wait_until(lambda: drained(ctx), 5)
    assert await wait_until(lambda: gitea.double.in_flight == 0, 10), gitea.double.in_flight
    assert await wait_until(lambda: len(own_tasks()) <= tasks_before, 5), own_tasks()
    await assert_recovers(call, gitea)
    assert_no_token(logs, json.dumps(results))


# --- Gitea down, then up -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TestGiteaDownThenUp:
    """Nothing listens on Gitea's port at first (connections refused), then a Gitea starts."""

    @pytest.fixture
    def port_for_gitea(self) -> int:
        return _free_port()

    @pytest.fixture
    def registry(self, aegis_settings, port_for_gitea):  # noqa: F811
        client, tools = gitea_tools(
            aegis_settings,
            f"http://127.0.0.1:{port_for_gitea}",
            GITEA_TOKEN,
            public_url="https://git.example.com",
        )
        yield tools
        client.close()

    @with_settings(**UPSTREAM)
    @pytest.mark.gen_test(timeout=60)
    async def test_refused_connections_then_gitea_comes_up(
        self, call, logs, port_for_gitea, client_deadline
    ):
        for tool, arguments in CALLS:
            started = time.monotonic()
            message = await call.error(tool, **arguments)
            assert "Gitea is unavailable" in message, (tool, message)
            assert time.monotonic() - started < client_deadline + SLACK
        server = HTTPServer(make_double_app(token=GITEA_TOKEN))
        server.listen(port_for_gitea, "127.0.0.1")
        try:
            for tool, arguments in CALLS:
                result = await call.raw(tool, **arguments)
                assert not result.get("isError"), (tool, result["content"][0]["text"])
        finally:
            server.stop()
            await server.close_all_connections()
        assert_no_token(logs)
