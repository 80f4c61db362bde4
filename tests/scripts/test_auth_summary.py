"""scripts/auth_summary.sh: exact counts from a fabricated audit log, and where it reads the log."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "auth_summary.sh"

# User agents chosen to fool a word search: they contain the event and status names, quotes and
# JSON-looking fragments. json.dumps escapes their quotes, so exact matching must ignore them.
TRICKY_AGENTS = [
    "success-bot/1.0 (access_denied; api_authentication)",
    'x", "event": "access_denied", "reason": "invalid_api_key',
    '{"event": "api_authentication", "status": "success"}',
    "ends with a backslash \\",
]


def ts(minutes_ago: float = 0) -> str:
    moment = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def line(**fields) -> str:
    return json.dumps(fields)  # default separators: exactly what the server writes


def auth_ok(ip, agent="ChatGPT-User/1.0", when=None):
    return line(
        timestamp=when or ts(),
        event="api_authentication",
        status="success",
        client_ip=ip,
        user_agent=agent,
        key_hint="a1b2c3d4...e1f2",
    )


def auth_fail(ip, agent="curl/8.0", when=None):
    return line(
        timestamp=when or ts(),
        event="api_authentication",
        status="failure",
        reason="invalid_api_key",
        client_ip=ip,
        user_agent=agent,
    )


def denied(ip, reason, when=None):
    return line(
        timestamp=when or ts(),
        event="access_denied",
        reason=reason,
        client_ip=ip,
        path="/mcp/tools",
    )


def rate_limited(ip, when=None):
    return line(
        timestamp=when or ts(),
        event="auth_rate_limit_exceeded",
        severity="high",
        client_ip=ip,
        failures=5,
        window=300,
    )


def tool_call(status, agent_ip="203.0.113.4"):
    return line(
        timestamp=ts(),
        event="tool_call",
        tool="get_file_contents",
        transport="sse",
        status=status,
        duration_ms=12.3,
        key_hint="a1b2c3d4...e1f2",
        client_ip=agent_ip,
    )


def build_log() -> list[str]:
    lines = []
    # 4 successes, each with a tricky agent.
    lines += [auth_ok("203.0.113.4", agent) for agent in TRICKY_AGENTS]
    # 5 wrong-key attempts from .66 (then it is blocked), 2 from .77, 1 from .88; each with its denial.
    for ip, n in (("198.51.100.66", 5), ("198.51.100.77", 2), ("198.51.100.88", 1)):
        for i in range(n):
            lines.append(auth_fail(ip, TRICKY_AGENTS[i % len(TRICKY_AGENTS)]))
            lines.append(denied(ip, "invalid_api_key"))
    lines.append(rate_limited("198.51.100.66"))
    lines += [denied("198.51.100.66", "rate_limited")] * 2
    lines += [denied("192.0.2.10", "missing_api_key")] * 3
    lines.append(denied("192.0.2.11", "query_key_not_allowed"))
    lines.append(rate_limited("198.51.100.77"))
    lines.append(
        rate_limited("198.51.100.66")
    )  # blocked again after its window: same IP, second event
    lines += [tool_call("success")] * 3 + [tool_call("error"), tool_call("denied")]
    lines.append("")  # a blank line and a non-JSON line are ignored
    lines.append("not json at all: success api_authentication")
    return lines


def summarize(*args: str, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or tempfile.mkdtemp(prefix="auth-summary-"),
        timeout=30,
    )


def counts(output: str) -> dict[str, int]:
    return {
        m.group(1).strip(): int(m.group(2))
        for m in re.finditer(r"^(\s*[\w ()-]+):\s+(\d+)$", output, re.M)
    }


def top_ips(output: str) -> list[tuple[int, str]]:
    section = output.split("Top IPs by failed authentication:", 1)[1]
    return [(int(n), ip) for n, ip in re.findall(r"^\s+(\d+)\s+(\S+)$", section, re.M)]


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "audit.log"
    path.write_text("\n".join(build_log()) + "\n")
    return path


def test_counts_are_exact_despite_tricky_user_agents(log_file):
    result = summarize(str(log_file))
    assert result.returncode == 0, result.stderr
    got = counts(result.stdout)
    assert got["Total auth attempts"] == 12
    assert got["Successful"] == 4
    assert got["Failed"] == 8
    assert got["Requests denied"] == 8 + 2 + 3 + 1
    assert got["invalid_api_key"] == 8
    assert got["missing_api_key"] == 3
    assert got["query_key_not_allowed"] == 1
    assert got["rate_limited"] == 2
    assert got["Rate-limit events"] == 3
    assert got["Distinct rate-limited IPs"] == 2
    assert got["Tool calls"] == 5
    assert (got["success"], got["error"], got["denied"]) == (3, 1, 1)
    assert top_ips(result.stdout) == [
        (5, "198.51.100.66"),
        (2, "198.51.100.77"),
        (1, "198.51.100.88"),
    ]
    listed = result.stdout.split("Distinct rate-limited IPs:", 1)[1].split("Tool calls:", 1)[0]
    assert "198.51.100.66" in listed and "198.51.100.77" in listed


def test_naive_grep_would_have_been_wrong(log_file):
    """Guards the test itself: the fabricated log does defeat a word search."""
    text = log_file.read_text().splitlines()
    assert sum("api_authentication" in row and "success" in row for row in text) > 4
    assert sum("access_denied" in row and "invalid_api_key" in row for row in text) > 8


def test_empty_log(tmp_path):
    empty = tmp_path / "audit.log"
    empty.write_text("")
    result = summarize(str(empty))
    assert result.returncode == 0
    got = counts(result.stdout)
    assert got["Total auth attempts"] == 0 and got["Rate-limit events"] == 0
    assert "(none)" in result.stdout


def test_days_and_since_filter_by_timestamp(tmp_path):
    path = tmp_path / "audit.log"
    old, recent = ts(minutes_ago=60 * 24 * 10), ts(minutes_ago=60)
    path.write_text(
        "\n".join(
            [
                auth_ok("203.0.113.4", when=old),
                auth_fail("198.51.100.1", when=old),
                auth_ok("203.0.113.4", when=recent),
            ]
        )
        + "\n"
    )
    week = summarize("--days", "7", str(path))
    assert week.returncode == 0, week.stderr
    assert counts(week.stdout)["Total auth attempts"] == 1
    assert "Since:" in week.stdout
    since = summarize("--since", old[:10], str(path))
    assert counts(since.stdout)["Total auth attempts"] == 3
    assert counts(summarize(str(path)).stdout)["Total auth attempts"] == 3


@pytest.mark.parametrize(
    "args", [("--since", "last week"), ("--days", "seven"), ("--bogus",), ("a.log", "b.log")]
)
def test_bad_arguments_exit_2(args, log_file):
    assert summarize(*args).returncode == 2


def test_unreadable_log_exits_2(tmp_path):
    result = summarize(str(tmp_path / "nope.log"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr


@pytest.fixture
def fake_docker(tmp_path, log_file):
    """A stand-in for the docker CLI that records its arguments and 'cats' the fixture log."""
    calls = tmp_path / "docker-calls"
    stub = tmp_path / "docker"
    stub.write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\n[ "$1" = inspect ] && echo true && exit 0\n'
        f'[ "$1" = exec ] && exec cat {log_file}\nexit 1\n'
    )
    stub.chmod(0o755)
    return stub, calls


def test_without_argument_reads_the_container_log(fake_docker, make_env):
    stub, calls = fake_docker
    result = summarize(env=make_env(AEGIS_DOCKER=str(stub)))
    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines()[-1].split() == [
        "exec",
        "aegis-gitea-mcp",
        "cat",
        "/var/log/aegis-mcp/audit.log",
    ]
    assert counts(result.stdout)["Total auth attempts"] == 12
    assert "aegis-gitea-mcp:/var/log/aegis-mcp/audit.log" in result.stdout


def test_container_not_running_and_no_local_log_exits_2(tmp_path, make_env):
    stub = tmp_path / "docker"
    stub.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    stub.chmod(0o755)
    result = summarize(env=make_env(AEGIS_DOCKER=str(stub)))
    assert result.returncode == 2
    assert "no running container aegis-gitea-mcp" in result.stderr
    assert "LOG=" in result.stderr
    assert "Docker daemon" not in result.stderr


def test_without_a_container_reads_the_local_server_log(log_file, tmp_path, make_env):
    # After a local `make run`: no Docker daemon, the log at logs/audit.log in the checkout.
    stub = tmp_path / "docker"
    stub.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    stub.chmod(0o755)
    checkout = tmp_path / "checkout"
    (checkout / "logs").mkdir(parents=True)
    (checkout / "logs" / "audit.log").write_text(log_file.read_text())
    result = summarize(env=make_env(AEGIS_DOCKER=str(stub)), cwd=checkout)
    assert result.returncode == 0, result.stderr
    assert "Source: logs/audit.log" in result.stdout
    assert counts(result.stdout)["Total auth attempts"] == 12
    # AUDIT_LOG_PATH (as the server reads it) points elsewhere.
    moved = summarize(
        env=make_env(AEGIS_DOCKER=str(stub), AUDIT_LOG_PATH=str(log_file)), cwd=checkout
    )
    assert f"Source: {log_file}" in moved.stdout


def test_make_auth_summary_log_overrides(log_file, make_env):
    result = subprocess.run(
        ["make", "-s", "-C", str(SCRIPT.parents[1]), "auth-summary", f"LOG={log_file}"],
        capture_output=True,
        text=True,
        env=make_env(AEGIS_DOCKER="/nonexistent/docker"),
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert f"Source: {log_file}" in result.stdout


def test_without_docker_reads_the_local_path(log_file, tmp_path, make_env):
    env = make_env(AEGIS_DOCKER=str(tmp_path / "no-docker-here"), AEGIS_AUDIT_LOG=str(log_file))
    result = summarize(env=env)
    assert result.returncode == 0, result.stderr
    assert counts(result.stdout)["Successful"] == 4
    env["AEGIS_AUDIT_LOG"] = str(tmp_path / "absent.log")
    missing = summarize(env=env)
    assert missing.returncode == 2
    assert "pass the log file" in missing.stderr
