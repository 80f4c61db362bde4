"""The entry point the Dockerfile runs (``aegis-mcp`` / ``python -m aegis_tornado``), as a process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import KEY

pytestmark = pytest.mark.slow


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not re.match(
            r"^(GITEA_|MCP_|AUTH_|MAX_|AUDIT_|LOG_LEVEL|TRUSTED_|REPO_|SENSITIVE_"
            r"|ALLOWED_|SESSION_|SSE_|SHUTDOWN_)",
            k,
        )
    }
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 20, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aegis_tornado", *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Server:
    """A server process on a free port; its stdout lines parsed as they come."""

    def __init__(self, tmp_path, **env: str):
        env.setdefault("AUDIT_LOG_PATH", str(tmp_path / "audit.log"))
        self.audit_path = env["AUDIT_LOG_PATH"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aegis_tornado", "--port", "0"],
            env=clean_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict] = []
        self.port = None
        deadline = time.monotonic() + 20
        while self.port is None and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"server exited: {self.proc.stderr.read()}")
            record = json.loads(line)
            self.lines.append(record)
            if record["event"] == "listening":
                self.port = record["port"]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


@pytest.mark.parametrize(
    "env, message",
    [
        ({"GITEA_URL": "https://g.example"}, "No API keys configured in environment"),
        ({"MCP_API_KEYS": "1234"}, "MCP_API_KEYS: key #1 is too short"),
        ({"AUTH_FAILURE_WINDOW": "soon"}, "AUTH_FAILURE_WINDOW: must be a number of seconds"),
    ],
)
def test_invalid_settings_exit_2_with_one_line(env, message):
    result = run_cli(**env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert message in result.stderr
    assert "1234" not in result.stderr


def test_yaml_error_exits_2(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("port: [\n")
    result = run_cli("--config", str(config))
    assert result.returncode == 2 and "YAML syntax error at line" in result.stderr


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/dev/full", "No space left on device"),
        ("/proc/aegis/audit.log", ""),
    ],
)
def test_unwritable_audit_path_refuses_to_start(path, reason):
    result = run_cli(MCP_API_KEYS=KEY, GITEA_URL="https://g.example", AUDIT_LOG_PATH=path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"aegis-mcp: AUDIT_LOG_PATH: cannot write {path}")
    assert reason in result.stderr


def test_auth_disabled_is_announced_critically(tmp_path):
    server = Server(tmp_path, AUTH_ENABLED="false", GITEA_URL="https://g.example")
    try:
        with urllib.request.urlopen(server.url("/mcp/tools")) as response:
            assert response.status == 200
    finally:
        code, _, _ = server.stop()
    [line] = [r for r in server.lines if "authentication" in r["event"]]
    assert line["event"] == "API key authentication DISABLED - server is open to all requests!"
    assert line["level"] == "critical"
    assert code == 0


def test_enabled_auth_is_announced_with_the_key_count(tmp_path):
    second = "ab" * 20  # 40 characters: accepted, with a warning
    server = Server(tmp_path, MCP_API_KEYS=f"{KEY},{second}", GITEA_URL="https://g.example")
    code, out, err = server.stop()
    events = [r["event"] for r in server.lines]
    assert "API key authentication ENABLED (2 key(s) configured)" in events
    assert "api_key_shorter_than_recommended" in events + [
        json.loads(line)["event"] for line in out.splitlines()
    ]
    assert code == 0
    assert KEY not in out + err + "".join(map(json.dumps, server.lines))


def test_demo_mode_generates_and_prints_a_key_that_works(tmp_path):
    server = Server(tmp_path)
    try:
        assert any("DEMO MODE" in r["event"] for r in server.lines)
        banner = ""
        deadline = time.monotonic() + 10
        while "curl" not in banner and time.monotonic() < deadline:
            banner += server.proc.stderr.readline()
        key = re.search(r"\b([0-9a-f]{64})\b", banner).group(1)
        request = urllib.request.Request(
            server.url("/mcp/tools"), headers={"Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request) as response:
            assert len(json.load(response)["tools"]) == 24  # the 15 first tools and issue 13's nine
        # The built-in demo Gitea answers the tools: a newcomer can try them at once.
        call = urllib.request.Request(
            server.url("/mcp/tool/call"),
            method="POST",
            data=json.dumps(
                {
                    "tool": "get_file_contents",
                    "arguments": {"owner": "northwind", "repo": "lighthouse", "path": "README.md"},
                }
            ).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(call) as response:
            assert json.load(response)["structuredContent"]["text"].startswith("# Lighthouse")
    finally:
        code, out, _ = server.stop()
    assert code == 0
    # Printed once for the operator, never logged.
    assert key not in out and key not in open(server.audit_path).read()


def test_sigterm_exits_0_and_flushes_the_audit_log(tmp_path):
    server = Server(tmp_path, MCP_API_KEYS=KEY, GITEA_URL="https://g.example")
    for _ in range(20):
        request = urllib.request.Request(
            server.url("/mcp/tools"), headers={"Authorization": f"Bearer {KEY}"}
        )
        urllib.request.urlopen(request).read()
    code, _, _ = server.stop()
    assert code == 0
    records = [json.loads(line) for line in open(server.audit_path)]
    assert sum(r["event"] == "api_authentication" for r in records) == 20
