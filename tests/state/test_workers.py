"""``aegis-mcp --workers N``: one port, N processes, state shared through STATE_URL."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ..conftest import KEY, UNKNOWN_KEY
from ..hardening.process import ServerProcess
from ..test_cli import run_cli
from .test_replica_processes import get

pytestmark = pytest.mark.slow


def test_workers_without_state_url_are_refused_in_one_line():
    result = run_cli(
        "--workers", "2", MCP_API_KEYS=KEY, GITEA_URL="https://g.example", GITEA_TOKEN="t"
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("aegis-mcp: --workers 2 needs STATE_URL")


def test_workers_with_metrics_port_are_refused(redis_url):
    result = run_cli(
        "--workers",
        "2",
        MCP_API_KEYS=KEY,
        GITEA_URL="https://g.example",
        GITEA_TOKEN="t",
        STATE_URL=redis_url,
        METRICS_PORT="0",
    )
    assert result.returncode == 2 and "METRICS_PORT" in result.stderr


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(p) for p in handle.read().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:  # a zombie is not alive
        return handle.read().split(") ", 1)[1][0] != "Z"


def test_two_workers_share_the_port_and_the_limiter_and_stop_together(tmp_path, redis_url):
    server = ServerProcess(
        tmp_path,
        module="aegis_tornado",
        args=("--workers", "2"),
        STATE_URL=redis_url,
        MAX_AUTH_FAILURES="4",
        AUTH_FAILURE_WINDOW="60",
    )
    try:
        deadline = time.monotonic() + 20
        while sum('"listening"' in line for line in server.lines) < 2:
            assert time.monotonic() < deadline, server.stderr_so_far()
            time.sleep(0.05)
        workers = children(server.proc.pid)
        assert len(workers) == 2
        # Each worker keeps its own audit chain.
        for index in (0, 1):
            assert os.path.exists(f"{server.audit_path}.worker{index}")
        assert get(server.base_url, "/mcp/tools", KEY)[0] == 200
        # Each worker has its own socket on the port (SO_REUSEPORT): new connections reach both.
        for _ in range(30):
            assert get(server.base_url, "/mcp/tools", KEY)[0] == 200
        served = authentications([f"{server.audit_path}.worker{i}" for i in (0, 1)], 31)
        assert sum(served) == 31 and min(served) > 0, served
        # Whichever worker each connection lands on, the fourth failure blocks on all.
        for _ in range(4):
            assert get(server.base_url, "/mcp/tools", UNKNOWN_KEY)[0] == 401
        for _ in range(6):
            assert get(server.base_url, "/mcp/tools", KEY)[0] == 429
        server.signal(signal.SIGTERM)  # what docker stop sends: to the parent only
        assert server.wait(20) == 0
        assert not any(alive(pid) for pid in workers)
    finally:
        server.kill()


def authentications(audit_paths: list[str], expected: int) -> list[int]:
    """``api_authentication`` lines per audit file, once they add up to ``expected`` (each
    worker's audit writer is a thread: give them a moment) or after 5 s."""
    deadline = time.monotonic() + 5
    while True:
        counts = []
        for path in audit_paths:
            with open(path, encoding="utf-8") as handle:
                counts.append(sum('"api_authentication"' in line for line in handle))
        if sum(counts) >= expected or time.monotonic() > deadline:
            return counts
        time.sleep(0.05)


def test_workers_do_not_join_another_servers_port(tmp_path, redis_url):
    """SO_REUSEPORT would let a second `--workers` set share a port already served (and split
    its traffic): the port is probed first, and the second set refused in one line."""
    server = ServerProcess(
        tmp_path, module="aegis_tornado", args=("--workers", "2"), STATE_URL=redis_url
    )
    try:
        deadline = time.monotonic() + 20
        while sum('"listening"' in line for line in server.lines) < 2:
            assert time.monotonic() < deadline, server.stderr_so_far()
            time.sleep(0.05)
        result = run_cli(
            "--workers",
            "2",
            "--port",
            str(server.port),
            MCP_API_KEYS=KEY,
            GITEA_URL="https://g.example",
            GITEA_TOKEN="t",
            STATE_URL=redis_url,
        )
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "cannot listen" in result.stderr
    finally:
        server.kill()


def test_a_worker_that_dies_takes_the_set_down_for_a_restart(tmp_path, redis_url):
    server = ServerProcess(
        tmp_path, module="aegis_tornado", args=("--workers", "2"), STATE_URL=redis_url
    )
    try:
        deadline = time.monotonic() + 20
        while len(children(server.proc.pid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first, second = children(server.proc.pid)
        os.kill(first, signal.SIGKILL)
        assert server.wait(20) != 0  # the service manager sees a failure and restarts the set
        assert not alive(second)
    finally:
        server.kill()
