"""The bench's round-3 pieces, at toy size: the OAuth-token hook of ``bench/run_product.py``
against the real product and the bench's fake Gitea, and the report's OAuth and workers targets.
(Performance itself is measured by ``make bench``, never here.)"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
        "name": "get_file_contents",
        "arguments": {"owner": "bench", "repo": "fixture", "path": "src/fixture.py", "ref": "main"},
    },
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port}")


def call(port: int, bearer: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/mcp",
        data=json.dumps(CALL).encode(),
        headers={
            "Authorization": f"Bearer {bearer}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, {}


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        proc.terminate()
    for proc in started:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_oauth_hook_seeds_a_token_that_takes_the_real_oauth_path(tmp_path, processes):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    gitea_port, port = free_port(), free_port()
    gitea = subprocess.Popen(
        [sys.executable, str(BENCH / "fake_gitea.py"), "--port", str(gitea_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    processes.append(gitea)
    wait_listening(gitea_port, gitea)
    key, token_file, log = secrets.token_hex(32), tmp_path / "token", tmp_path / "product.log"
    product_env = {
        **env,
        "GITEA_URL": f"http://127.0.0.1:{gitea_port}",
        "GITEA_TOKEN": "bench-server-token-0123",
        "MCP_API_KEYS": key,
        "AUDIT_LOG_PATH": "",
        "OAUTH_ENABLED": "true",
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "GITEA_OAUTH_CLIENT_ID": "bench-gitea-app",
        "GITEA_OAUTH_CLIENT_SECRET": "bench-gitea-app-secret-0123",
        "OAUTH_STATE_PATH": str(tmp_path / "oauth.sqlite"),
        "BENCH_OAUTH_TOKEN_FILE": str(token_file),
    }
    with open(log, "wb") as out:
        product = subprocess.Popen(
            [sys.executable, str(BENCH / "run_product.py"), "--port", str(port)],
            env=product_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    processes.append(product)
    wait_listening(port, product)
    deadline = time.monotonic() + 30
    while not token_file.exists():
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.05)
    token = token_file.read_text().strip()
    assert token.startswith("agm_at_")

    status, reply = call(port, token)
    assert status == 200 and "AEGIS_BENCH_MARKER" in json.dumps(reply), reply
    status, reply = call(port, key)
    assert status == 200 and "AEGIS_BENCH_MARKER" in json.dumps(reply), reply
    assert call(port, token[:-2] + "xx")[0] == 401
    product.terminate()
    product.wait(timeout=10)
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    # The token was looked up by the OAuth service and the call ran as the seeded user.
    assert any(e["event"] == "oauth_access" and e.get("gitea_user") == "bench-user" for e in events)
    calls = [e for e in events if e["event"] == "tool_call" and e.get("status") == "success"]
    assert [e.get("gitea_user") for e in calls] == ["bench-user", None]
    assert token not in log.read_text()


def run(rep: int, scenario: str, server: str, c: int, rps: float, cpu: float, p99: float) -> dict:
    return {
        "rep": rep,
        "scenario": scenario,
        "server": server,
        "c": c,
        "rps": rps,
        "server_cpu_pct": cpu,
        "p99_ms": p99,
        "errors": 0,
    }


def test_the_report_judges_the_oauth_and_workers_points():
    sys.path.insert(0, str(BENCH))
    try:
        import report
    finally:
        sys.path.remove(str(BENCH))
    runs = []
    for rep in (1, 2, 3):
        runs += [
            run(rep, "call_oauth", "Po", 10, 300.0, 100.0, 20.0),
            run(rep, "call_oauth", "Pk", 10, 400.0, 100.0, 10.0),
            run(rep, "workers", "W1", 10, 200.0, 90.0, 30.0),
            run(rep, "workers", "W2", 10, 340.0, 160.0, 30.0),
        ]
    report.add_per_cpu(runs)
    targets = {t["target"]: t for t in report.targets(runs, smoke=False)}
    oauth = next(t for name, t in targets.items() if "OAuth bearer" in name and "c=10" in name)
    assert oauth["value"] == pytest.approx(0.75) and oauth["met"] is False
    workers = next(t for name, t in targets.items() if "--workers 2" in name and "c=10" in name)
    assert workers["value"] == pytest.approx(1.7) and workers["met"] is True
    rows = {(r["scenario"], r["server"]): r for r in report.summarise(runs)}
    assert rows[("call_oauth", "Po")]["rps_vs_Pk"] == pytest.approx(0.75)
    assert rows[("workers", "W2")]["rps_vs_W1"] == pytest.approx(1.7)
