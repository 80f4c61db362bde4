"""The tamper-evident audit chain: written by the real server (restarts and rotation
included), checked by scripts/verify_audit.py, which finds each kind of tampering."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.error import HTTPError

import pytest
import structlog

from aegis_tornado.audit_chain import GENESIS, line_digest
from aegis_tornado.logs import check_audit_path, configure_logging

from ..conftest import KEY, UNKNOWN_KEY
from .process import REPO, ServerProcess

VERIFY = REPO / "scripts" / "verify_audit.py"
SUMMARY = REPO / "scripts" / "auth_summary.sh"


def verify(*paths) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(VERIFY), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def write_log(path: Path, count: int) -> list[str]:
    """``count`` tool_call lines through the real pipeline (start-up check included)."""
    check_audit_path(str(path))
    runtime = configure_logging("info", str(path), stream=io.StringIO(), cache_loggers=False)
    try:
        for n in range(count):
            structlog.get_logger("aegis.audit").info("tool_call", n=n, status="success")
    finally:
        runtime.stop()
    return path.read_text().splitlines()


def rewrite(path: Path, lines: list[str], end: str = "\n") -> None:
    path.write_text("\n".join(lines) + end)


@pytest.fixture
def log(tmp_path) -> tuple[Path, list[str]]:
    path = tmp_path / "audit.log"
    return path, write_log(path, 8)


def test_each_line_carries_its_seq_and_the_digest_of_the_line_before(log):
    path, lines = log
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == list(range(1, 10))
    assert records[0]["event"] == "audit_log_opened" and records[0]["prev"] == GENESIS
    for before, line in zip(lines[:-1], records[1:], strict=True):
        assert line["prev"] == line_digest(before)
    assert list(records[1])[-2:] == ["seq", "prev"]  # appended: grep recipes are unaffected
    result = verify(path)
    assert result.returncode == 0, result.stdout
    assert "OK 9 line(s)" in result.stdout and line_digest(lines[-1]) in result.stdout


def test_an_edited_line_is_reported_where_it_was_edited(log):
    path, lines = log
    lines[4] = lines[4].replace('"status": "success"', '"status": "error"')
    rewrite(path, lines)
    result = verify(path)
    assert result.returncode == 1
    assert f"{path}:5: the line was changed" in result.stdout


def test_a_deleted_line_is_reported_at_the_gap(log):
    path, lines = log
    del lines[3]
    rewrite(path, lines)
    result = verify(path)
    assert result.returncode == 1
    assert f"{path}:4: seq 5 where 4 was expected" in result.stdout
    assert "deleted" in result.stdout


def test_lines_deleted_from_the_head_of_the_file_are_reported(log):
    path, lines = log
    rewrite(path, lines[2:])
    result = verify(path)
    assert result.returncode == 1
    assert f"{path}:1: the file's first line has seq 3, not 1" in result.stdout


def test_reordered_lines_are_reported(log):
    path, lines = log
    lines[5], lines[6] = lines[6], lines[5]
    rewrite(path, lines)
    result = verify(path)
    assert result.returncode == 1
    assert f"{path}:6: seq 7 where 6 was expected" in result.stdout


def test_a_moved_line_is_reported_when_it_reappears_out_of_order(log):
    path, lines = log
    moved = lines.pop(2)
    lines.insert(6, moved)
    rewrite(path, lines)
    result = verify(path)
    assert result.returncode == 1 and f"{path}:3: seq 4 where 3 was expected" in result.stdout


def test_a_file_cut_mid_line_is_reported_as_truncated(log):
    path, lines = log
    path.write_text("\n".join(lines)[:-20])
    result = verify(path)
    assert result.returncode == 1
    assert f"{path}:9: the line is incomplete" in result.stdout and "truncated" in result.stdout


def test_lines_cut_from_the_end_of_a_rotated_file_are_reported(tmp_path):
    old, new = tmp_path / "audit.log.1", tmp_path / "audit.log"
    write_log(new, 4)
    os.rename(new, old)
    write_log(new, 3)
    assert verify(old, new).returncode == 0
    rewrite(old, old.read_text().splitlines()[:-2])  # truncated by whole lines
    result = verify(old, new)
    assert result.returncode == 1
    assert f"{new}:1: the file does not follow on from {old}" in result.stdout


def test_an_inserted_line_without_chain_fields_is_reported(log):
    path, lines = log
    lines.insert(5, json.dumps({"timestamp": "x", "event": "tool_call", "status": "success"}))
    rewrite(path, lines)
    result = verify(path)
    assert result.returncode == 1 and f"{path}:6: the line has no chain fields" in result.stdout


def test_files_out_of_order_and_unreadable_files(tmp_path):
    old, new = tmp_path / "audit.log.1", tmp_path / "audit.log"
    write_log(new, 2)
    os.rename(new, old)
    write_log(new, 2)
    assert verify(new, old).returncode == 1
    missing = verify(tmp_path / "nope.log")
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_a_compressed_rotated_file_is_read(tmp_path):
    old, new = tmp_path / "audit.log.1", tmp_path / "audit.log"
    write_log(new, 3)
    os.rename(new, old)
    write_log(new, 3)
    with gzip.open(str(old) + ".gz", "wb") as handle:
        handle.write(old.read_bytes())
    result = verify(str(old) + ".gz", new)
    assert result.returncode == 0, result.stdout
    cut = Path(str(old) + ".gz").read_bytes()
    Path(str(old) + ".gz").write_bytes(cut[: len(cut) // 2])
    damaged = verify(str(old) + ".gz", new)
    assert damaged.returncode == 2 and "ends early" in damaged.stderr, damaged
    assert "Traceback" not in damaged.stderr


def test_lines_written_before_the_chain_existed_are_reported_as_not_covered(tmp_path):
    path = tmp_path / "audit.log"
    path.write_text('{"timestamp": "t", "event": "tool_call"}\n' * 3)
    write_log(path, 2)
    result = verify(path)
    assert result.returncode == 0, result.stdout
    assert "first 3 line(s) predate the chain" in result.stdout


def test_a_file_left_with_an_incomplete_line_is_continued_on_a_line_of_its_own(tmp_path):
    path = tmp_path / "audit.log"
    lines = write_log(path, 2)
    path.write_text("\n".join(lines) + "\n" + lines[-1][:30])  # a crash mid-write
    write_log(path, 2)
    records = path.read_text().splitlines()
    assert records[len(lines)] == lines[-1][:30]  # the damage stays visible, alone
    assert [json.loads(line)["n"] for line in records[len(lines) + 2 :]] == [0, 1]
    assert f"{path}:{len(lines) + 1}: the line is not JSON" in verify(path).stdout


# -- the real server: restart and rotation ----------------------------------------------------


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


def wait_for(path: Path, text: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} never reached {path}")


@pytest.mark.slow
def test_the_chain_survives_restarts_and_rotation_in_the_real_server(tmp_path):
    path = tmp_path / "audit.log"
    rotated = tmp_path / "audit.log.1"
    server = ServerProcess(tmp_path, module="aegis_tornado", AUDIT_LOG_PATH=str(path))
    try:
        assert [get(server, f"first-{n}") for n in range(3)] == [200] * 3
        assert get(server, "first-bad", key=UNKNOWN_KEY) == 401
        wait_for(path, "first-bad")
        os.rename(path, rotated)  # logrotate, while the server runs
        assert [get(server, f"second-{n}") for n in range(3)] == [200] * 3
        server.signal()
        assert server.wait(15) == 0
    finally:
        server.kill()
    stdout_audit = [line.rstrip("\n") for line in server.lines if '"seq": ' in line]
    written = rotated.read_text().splitlines() + path.read_text().splitlines()
    assert stdout_audit == [line for line in written if "audit_log_opened" not in line]
    assert json.loads(path.read_text().splitlines()[0])["seq"] == 1

    # A restart continues the file's chain where it stopped.
    server = ServerProcess(tmp_path, module="aegis_tornado", AUDIT_LOG_PATH=str(path))
    try:
        assert get(server, "third-0") == 200
        server.signal()
        assert server.wait(15) == 0
    finally:
        server.kill()
    result = verify(rotated, path)
    assert result.returncode == 0, result.stdout
    assert "0 line(s) predate" not in result.stdout and "predate" not in result.stdout

    # A restart after a rotation made while the server was down anchors to the rotated file.
    os.rename(path, rotated.with_suffix(".2"))
    os.rename(rotated, tmp_path / "audit.log.3")
    os.rename(rotated.with_suffix(".2"), rotated)
    server = ServerProcess(tmp_path, module="aegis_tornado", AUDIT_LOG_PATH=str(path))
    try:
        assert get(server, "fourth-0") == 200
        server.signal()
        assert server.wait(15) == 0
    finally:
        server.kill()
    result = verify(tmp_path / "audit.log.3", rotated, path)
    assert result.returncode == 0, result.stdout

    # auth_summary.sh counts chained lines exactly as before.
    summary = subprocess.run(
        ["bash", str(SUMMARY), str(tmp_path / "audit.log.3")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert summary.returncode == 0, summary.stderr
    counts = dict(
        (label.strip(), int(value))
        for label, value in (row.rsplit(None, 1) for row in summary.stdout.splitlines()[4:9])
    )
    # The first file (moved twice): three successes and one failure.
    assert (counts["Total auth attempts:"], counts["Successful:"], counts["Failed:"]) == (4, 3, 1)


def test_lines_lost_to_a_full_disk_show_as_a_gap_that_the_stdout_copy_fills(tmp_path):
    real, link = tmp_path / "real.log", tmp_path / "audit.log"
    os.symlink(real, link)
    stream = io.StringIO()
    runtime = configure_logging("info", str(link), stream=stream, cache_loggers=False)
    audit = structlog.get_logger("aegis.audit")
    try:
        audit.info("tool_call", n=1)
        runtime.flush()
        os.unlink(link)
        os.symlink("/dev/full", link)
        audit.info("tool_call", n=2)
        audit.info("tool_call", n=3)
        runtime.flush()
        os.unlink(link)
        os.symlink(real, link)  # the same file, with room again
        audit.info("tool_call", n=4)
        runtime.flush()
    finally:
        runtime.stop()
    result = verify(real)
    assert result.returncode == 1
    assert f"{real}:2: seq 4 where 2 was expected: 2 line(s)" in result.stdout
    copies = [line for line in stream.getvalue().splitlines() if '"tool_call"' in line]
    assert [json.loads(line)["n"] for line in copies] == [1, 2, 3, 4]
    real.write_text("\n".join(copies) + "\n")  # the collector's copy is the same chain
    assert verify(real).returncode == 0


def test_make_verify_audit_runs_the_script_on_the_files_given(log, tmp_path):
    path, lines = log
    good = subprocess.run(
        ["make", "-s", "verify-audit", f"LOG={path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0 and "OK 9 line(s)" in good.stdout, good.stdout + good.stderr
    rewrite(path, lines[:3] + lines[4:])
    bad = subprocess.run(
        ["make", "-s", "verify-audit", f"LOG={path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and f"{path}:4: seq 5 where 4 was expected" in bad.stdout


def test_a_log_without_any_chained_line_is_not_called_intact(tmp_path):
    path = tmp_path / "old.log"
    path.write_text('{"timestamp": "t", "event": "tool_call"}\n')
    result = verify(path)
    assert result.returncode == 1 and "no chained line" in result.stdout
