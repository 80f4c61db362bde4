"""scripts/generate_api_key.py: the key, the .env line, the digest form, and the metadata record."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from datetime import datetime, timedelta, timezone

import pytest

HEX64 = re.compile(r"[0-9a-f]{64}")


def key_from(output: str) -> str:
    match = re.search(r"^\s*MCP_API_KEYS=([0-9a-f]{64})$", output, re.M)
    assert match, output
    return match.group(1)


def test_prints_key_env_line_and_digest_form(run_py):
    result = run_py("generate_api_key.py")
    assert result.returncode == 0, result.stderr
    key = key_from(result.stdout)
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert re.search(rf"^\s*{key}$", result.stdout, re.M), "the key is shown on a line of its own"
    assert f"MCP_API_KEYS=sha256:{digest}" in result.stdout
    assert f'sha256: "{digest}"' in result.stdout  # YAML form
    assert f"{key[:8]}...{key[-4:]}" in result.stdout  # the hint the audit log will show
    assert "save it now" in result.stdout.lower()
    assert "not saved" in result.stdout.lower()  # says metadata was not kept
    assert key not in result.stderr


def test_quiet_prints_only_the_key(run_py):
    result = run_py("generate_api_key.py", "--quiet")
    assert result.returncode == 0
    assert HEX64.fullmatch(result.stdout.rstrip("\n"))
    assert result.stdout.count("\n") == 1


def test_keys_are_64_hex_and_distinct(run_py):
    keys = [run_py("generate_api_key.py", "-q").stdout.strip() for _ in range(5)]
    assert all(HEX64.fullmatch(k) for k in keys)
    assert len(set(keys)) == len(keys)


def test_no_metadata_file_without_the_flag(run_py, tmp_path):
    run_py("generate_api_key.py", "--name", "x")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def open_umask():
    """Run with umask 000, so a 0600 file proves the script set the mode itself."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_save_metadata_writes_record_without_key(run_py, tmp_path, open_umask):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    result = run_py("generate_api_key.py", "--name", "chatgpt-workspace", "--save-metadata")
    assert result.returncode == 0, result.stderr
    key = key_from(result.stdout)

    path = tmp_path / ".key-metadata.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert key not in text
    assert key[8:-4] not in text  # not even the hidden middle of the key
    lines = text.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert list(record) == ["name", "created", "key_hint", "sha256"]
    assert record["name"] == "chatgpt-workspace"
    assert record["key_hint"] == f"{key[:8]}...{key[-4:]}"
    assert record["sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert record["created"].endswith("Z")
    created = datetime.fromisoformat(record["created"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= created <= datetime.now(timezone.utc)
    assert str(path.name) in result.stdout


def test_save_metadata_appends_and_keeps_mode(run_py, tmp_path):
    for name in ("first", "second"):
        assert (
            run_py("generate_api_key.py", "--name", name, "--save-metadata", "-q").returncode == 0
        )
    path = tmp_path / ".key-metadata.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["name"] for r in records] == ["first", "second"]
    assert records[0]["sha256"] != records[1]["sha256"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_quiet_with_metadata_keeps_stdout_pipeable(run_py, tmp_path):
    result = run_py("generate_api_key.py", "-q", "--save-metadata")
    key = result.stdout.strip()
    assert HEX64.fullmatch(key)
    record = json.loads((tmp_path / ".key-metadata.jsonl").read_text())
    assert record["sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert record["name"] is None


def test_metadata_file_from_flag_beats_environment(run_py, tmp_path, make_env):
    env = make_env(KEY_METADATA_FILE=str(tmp_path / "from-env.jsonl"))
    run_py("generate_api_key.py", "-q", "--save-metadata", env=env)
    assert (tmp_path / "from-env.jsonl").exists()
    run_py("generate_api_key.py", "-q", "--save-metadata", "--metadata-file", "flag.jsonl", env=env)
    assert (tmp_path / "flag.jsonl").exists()
    assert len((tmp_path / "from-env.jsonl").read_text().splitlines()) == 1
    assert not (tmp_path / ".key-metadata.jsonl").exists()


def test_unwritable_metadata_path_fails_before_showing_a_key(run_py, tmp_path):
    result = run_py(
        "generate_api_key.py",
        "--save-metadata",
        "--metadata-file",
        str(tmp_path / "no" / "such" / "m.jsonl"),
    )
    assert result.returncode == 2
    assert not HEX64.search(result.stdout + result.stderr)
    assert "metadata" in result.stderr


def chatgpt_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "ChatGPT" in line]


def test_chatgpt_gets_the_key_in_the_sse_url_never_a_header(run_py):
    result = run_py("generate_api_key.py")
    assert result.returncode == 0
    lines = chatgpt_lines(result.stdout)
    assert lines, result.stdout
    assert all("Bearer" not in line and "Authorization" not in line for line in lines)
    assert any("/mcp/sse?api_key=<key>" in line for line in lines)
    # Header clients are still told about the header, on their own line.
    assert "Other MCP clients" in result.stdout and "'Authorization: Bearer <key>'" in result.stdout
