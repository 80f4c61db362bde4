"""A full disk or an unwritable audit path, through the real process.

At start-up: refuse to start, exit 2, one line naming the path and the reason. At run time:
a loud critical line on stdout, every request still served with its audit line on stdout,
and the file written again once it can be (with a line saying so).

Complements tests/test_cli.py (start-up: /dev/full, /proc) and tests/test_logs.py (the
pipeline alone).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from urllib.error import HTTPError

import pytest

from ..conftest import KEY, UNKNOWN_KEY
from .process import REPO, ServerProcess, clean_env

pytestmark = pytest.mark.slow


def under_a_file(tmp):
    (tmp / "file").write_text("x")
    return str(tmp / "file" / "audit.log")


def symlink_loop(tmp):
    os.symlink(tmp / "loop", tmp / "loop")
    return str(tmp / "loop")


@pytest.mark.parametrize(
    "make_path, reason",
    [
        (str, "Is a directory"),
        (under_a_file, "file is not a directory"),
        (symlink_loop, "symbolic links"),
    ],
)
def test_an_unusable_audit_path_refuses_to_start_and_says_why(tmp_path, make_path, reason):
    path = make_path(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "aegis_tornado", "--port", "0"],
        cwd=tmp_path,  # not the checkout: a developer's .env there must not count
        capture_output=True,
        text=True,
        timeout=20,
        env=clean_env(
            MCP_API_KEYS=KEY,
            GITEA_URL="http://127.0.0.1:9",
            GITEA_TOKEN="bot-token",
            AUDIT_LOG_PATH=path,
        ),
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"aegis-mcp: AUDIT_LOG_PATH: cannot write {path}")
    assert reason in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


def get(server: ServerProcess, request_id: str, key: str = KEY) -> int:
    request = urllib.request.Request(
        server.base_url + "/mcp/tools",
        headers={"Authorization": f"Bearer {key}", "X-Request-Id": request_id},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except HTTPError as error:
        return error.code


def test_a_disk_that_fills_at_run_time_is_reported_and_loses_no_audit_line(tmp_path):
    first, second, link = tmp_path / "first.log", tmp_path / "second.log", tmp_path / "audit.log"
    os.symlink(first, link)
    server = ServerProcess(tmp_path, module="aegis_tornado", AUDIT_LOG_PATH=str(link))
    try:
        assert [get(server, f"before-{n}") for n in range(5)] == [200] * 5
        # Lines are written by a background thread in batches: let these reach the file first.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "before-4" not in first.read_text():
            time.sleep(0.02)
        os.unlink(link)
        os.symlink("/dev/full", link)  # the disk is full
        statuses = [get(server, f"full-{n}") for n in range(20)]
        statuses += [get(server, f"full-bad-{n}", key=UNKNOWN_KEY) for n in range(3)]
        assert statuses == [200] * 20 + [401] * 3  # serving goes on
        os.unlink(link)
        os.symlink(second, link)  # space again (a rotated, fresh file)
        assert [get(server, f"after-{n}") for n in range(5)] == [200] * 5
        server.signal()
        assert server.wait(15) == 0
    finally:
        server.kill()

    records = server.records()  # every stdout line parses
    audited = {r["request_id"] for r in records if r["event"] == "api_authentication"}
    expected = (
        {f"before-{n}" for n in range(5)}
        | {f"full-{n}" for n in range(20)}
        | {f"full-bad-{n}" for n in range(3)}
        | {f"after-{n}" for n in range(5)}
    )
    assert expected <= audited, expected - audited
    [alarm] = [r for r in records if r["event"] == "audit_log_write_failed"]  # loud, not spammy
    assert alarm["level"] == "critical" and "No space left" in alarm["error"]
    assert alarm["path"] == str(link)
    assert any(r["event"] == "audit_log_write_recovered" for r in records)

    in_first = {json.loads(line).get("request_id") for line in first.read_text().splitlines()}
    in_second = {json.loads(line).get("request_id") for line in second.read_text().splitlines()}
    assert {f"before-{n}" for n in range(5)} <= in_first
    assert {f"after-{n}" for n in range(5)} <= in_second
    assert KEY not in "".join(server.lines)
