"""The entry point the Dockerfile runs (``aegis-mcp`` / ``python -m aegis_tornado``), as a process.

Every process runs in a temporary working directory, so a developer's own ``.env`` in the
checkout never leaks into a test (the CLI reads ``./.env``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import KEY, OTHER_KEY

pytestmark = pytest.mark.slow


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not re.match(
            r"^(GITEA_|MCP_|AUTH_|MAX_|AUDIT_|LOG_LEVEL|TRUSTED_|REPO_|SENSITIVE_"
            r"|ALLOWED_|SESSION_|SSE_|SHUTDOWN_|HTTP_|STATE_|AEGIS_)",
            k,
        )
    }
    env.update(extra)
    return env


def run_cli(
    *args: str, timeout: float = 20, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aegis_tornado", *args],
        env=clean_env(**env),
        cwd=cwd or tempfile.mkdtemp(prefix="aegis-cli-"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Server:
    """A server process on a free port; its stdout lines parsed as they come."""

    def __init__(self, tmp_path, *args: str, **env: str):
        env.setdefault("AUDIT_LOG_PATH", str(tmp_path / "audit.log"))
        self.audit_path = env["AUDIT_LOG_PATH"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aegis_tornado", "--port", "0", *args],
            env=clean_env(**env),
            cwd=tmp_path,
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
        (
            {"GITEA_URL": "https://g.example", "MCP_API_KEYS": KEY},
            "GITEA_TOKEN: not set, but GITEA_URL is",
        ),
        ({"REPO_DENYLIST": "justaname"}, "REPO_DENYLIST: invalid deny pattern"),
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
    result = run_cli(
        MCP_API_KEYS=KEY, GITEA_URL="https://g.example", GITEA_TOKEN="t", AUDIT_LOG_PATH=path
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"aegis-mcp: AUDIT_LOG_PATH: cannot write {path}")
    assert reason in result.stderr


def test_auth_disabled_is_announced_critically(tmp_path):
    server = Server(tmp_path, AUTH_ENABLED="false", GITEA_URL="https://g.example", GITEA_TOKEN="t")
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
    server = Server(
        tmp_path, MCP_API_KEYS=f"{KEY},{second}", GITEA_URL="https://g.example", GITEA_TOKEN="t"
    )
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
    server = Server(tmp_path, MCP_API_KEYS=KEY, GITEA_URL="https://g.example", GITEA_TOKEN="t")
    for _ in range(20):
        request = urllib.request.Request(
            server.url("/mcp/tools"), headers={"Authorization": f"Bearer {KEY}"}
        )
        urllib.request.urlopen(request).read()
    code, _, _ = server.stop()
    assert code == 0
    records = [json.loads(line) for line in open(server.audit_path)]
    assert sum(r["event"] == "api_authentication" for r in records) == 20


def test_demo_mode_log_and_banner_agree(tmp_path):
    server = Server(tmp_path)
    try:
        banner = ""
        deadline = time.monotonic() + 10
        while "changes on every start" not in banner and time.monotonic() < deadline:
            banner += server.proc.stderr.readline()
    finally:
        server.stop()
    [auth] = [r["event"] for r in server.lines if "authentication" in r["event"]]
    assert "no MCP_API_KEYS configured" in auth and "1 demo key generated" in auth
    assert "key(s) configured" not in auth
    assert "No MCP_API_KEYS configured, so this run generated a key" in banner
    # ChatGPT cannot send headers: the banner gives it the URL form.
    assert re.search(r"/mcp/sse\?api_key=<key>", banner)


# --------------------------------------------------------------------------- start-up failures


def test_port_in_use_exits_2_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "--port",
            str(port),
            MCP_API_KEYS=KEY,
            GITEA_URL="https://g.example",
            GITEA_TOKEN="t",
            AUDIT_LOG_PATH=str(tmp_path / "audit.log"),
        )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith(
        f"aegis-mcp: MCP_HOST/MCP_PORT: cannot listen on 127.0.0.1:{port}: "
    )
    assert "in use" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_address_not_on_this_host_exits_2_with_one_line(tmp_path):
    # 192.0.2.1 (TEST-NET-1) is no interface of this machine: binding it is not permitted.
    result = run_cli(
        "--host",
        "192.0.2.1",
        "--port",
        "0",
        MCP_API_KEYS=KEY,
        GITEA_URL="https://g.example",
        GITEA_TOKEN="t",
        AUDIT_LOG_PATH=str(tmp_path / "audit.log"),
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith("aegis-mcp: MCP_HOST/MCP_PORT: cannot listen on 192.0.2.1:0")
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_env_file_exits_2(tmp_path):
    result = run_cli("--env-file", str(tmp_path / "nope.env"))
    assert result.returncode == 2
    assert result.stderr == f"aegis-mcp: --env-file {tmp_path / 'nope.env'}: no such file\n"


def test_gitea_anonymous_starts_and_says_so(tmp_path):
    server = Server(tmp_path, MCP_API_KEYS=KEY, GITEA_URL="https://g.example", GITEA_ANONYMOUS="1")
    code, _, _ = server.stop()
    assert code == 0
    [line] = [r for r in server.lines if r["event"] == "gitea_read_anonymously"]
    assert line["level"] == "warning" and "public repositories" in line["note"]


# --------------------------------------------------------------------------- .env


class GiteaDouble:
    """The Gitea double as a process on a free port, with its own bot token."""

    TOKEN = "dotenv-test-bot-token-41c9"

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aegis_tornado.gitea_double", "--port", "0"]
            + ["--token", self.TOKEN],
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + self.proc.stderr.read()
        self.url = f"http://127.0.0.1:{match.group(1)}"

    def stop(self):
        self.proc.terminate()
        self.proc.communicate(timeout=10)


def call_tool(server: Server, key: str, tool: str, arguments: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        server.url("/mcp/tool/call"),
        method="POST",
        data=json.dumps({"tool": tool, "arguments": arguments}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_dotenv_in_the_working_directory_names_the_gitea_and_the_key(tmp_path):
    """What the README promises: `make run` with a .env serves that Gitea with that key."""
    gitea = GiteaDouble()
    try:
        (tmp_path / ".env").write_text(
            "# written as a user would, from .env.example\n"
            f"GITEA_URL={gitea.url}\n"
            f"GITEA_TOKEN='{GiteaDouble.TOKEN}'\n"
            f'export MCP_API_KEYS="{KEY}"\n'
            "AUDIT_LOG_PATH=audit.log  # relative to the working directory\n"
        )
        server = Server(tmp_path, AUDIT_LOG_PATH=str(tmp_path / "audit.log"))
        try:
            assert not any("DEMO MODE" in r["event"] for r in server.lines)
            # alice/notes is private: only the .env's bot token can read it.
            status, result = call_tool(
                server, KEY, "get_repository", {"owner": "alice", "repo": "notes"}
            )
            assert status == 200 and not result.get("isError"), result
            assert result["structuredContent"]["full_name"] == "alice/notes"
            assert result["structuredContent"]["private"] is True
            # That key and no other: nothing was generated behind the user's back.
            status, _ = call_tool(server, OTHER_KEY, "list_repositories", {})
            assert status == 401
        finally:
            code, out, err = server.stop()
        assert code == 0
        assert GiteaDouble.TOKEN not in out + err and KEY not in out + err
    finally:
        gitea.stop()


def test_env_file_flag_and_precedence(tmp_path):
    """flags > environment > .env file > YAML > defaults."""
    env_file = tmp_path / "staging.env"
    env_file.write_text(
        f"MCP_API_KEYS={KEY}\nGITEA_URL=https://from-dotenv.example\nGITEA_TOKEN=t\n"
        "LOG_LEVEL=debug\nMAX_AUTH_FAILURES=7\nMCP_HOST=192.0.2.1\n"
    )
    config = tmp_path / "aegis.yaml"
    config.write_text("log_level: error\nmax_auth_failures: 9\nsession_ttl: 600\n")
    (tmp_path / ".env").write_text("LOG_LEVEL=nonsense\n")  # not read: --env-file names another
    server = Server(
        tmp_path,
        "--config",
        str(config),
        "--env-file",
        str(env_file),
        "--host",
        "127.0.0.1",  # flag beats MCP_HOST in the .env file (192.0.2.1 would not even bind)
        GITEA_URL="https://from-environment.example",  # environment beats the .env file
    )
    try:
        request = urllib.request.Request(server.url("/health"))
        with urllib.request.urlopen(request) as response:
            assert response.status == 200
    finally:
        code, out, _ = server.stop()
    assert code == 0
    # LOG_LEVEL=debug from the .env file beat the YAML's error: debug lines were written.
    assert any(
        r["level"] == "debug" for r in server.lines + [json.loads(x) for x in out.splitlines()]
    )


def test_bad_value_in_dotenv_names_the_file(tmp_path):
    (tmp_path / ".env").write_text("MCP_API_KEYS=abc\n")
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "aegis-mcp: MCP_API_KEYS (in .env): key #1 is too short (3 characters; at least 32 "
        "required, 64 recommended)\n"
    )
