"""scripts/check_key_age.py: ages from metadata and config, which keys count, and exit codes."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

YOUNG = "aa" * 32
OLD = "bb" * 32
UNTRACKED = "cc" * 32


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def hint(key: str) -> str:
    return f"{key[:8]}...{key[-4:]}"


def record(key: str, name: str | None, days_ago: int) -> dict:
    created = datetime.now(timezone.utc) - timedelta(days=days_ago)
    return {
        "name": name,
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "key_hint": hint(key),
        "sha256": digest(key),
    }


@pytest.fixture
def write_metadata(tmp_path):
    def write(*records: dict, name: str = ".key-metadata.jsonl"):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path

    return write


def test_all_young_keys_exit_0(run_py, write_metadata):
    write_metadata(record(YOUNG, "chatgpt", 10), record(OLD, None, 89))
    result = run_py("check_key_age.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chatgpt (aaaaaaaa...aaaa)" in result.stdout
    assert "10 days old" in result.stdout
    assert hint(OLD) in result.stdout and "89 days old" in result.stdout
    assert "ROTATE" not in result.stdout


def test_old_key_warns_and_exits_1(run_py, write_metadata):
    write_metadata(record(YOUNG, "fresh", 1), record(OLD, "stale", 120))
    result = run_py("check_key_age.py")
    assert result.returncode == 1
    assert (
        "ROTATE" in result.stdout and "stale" in result.stdout and "120 days old" in result.stdout
    )
    assert "WARNING" in result.stdout


@pytest.mark.parametrize(("days", "code"), [(90, 0), (91, 1)])
def test_limit_is_older_than_max_age(run_py, write_metadata, days, code):
    write_metadata(record(OLD, "edge", days))
    assert run_py("check_key_age.py").returncode == code


def test_max_age_days_option(run_py, write_metadata):
    write_metadata(record(YOUNG, "ten-days", 10))
    assert run_py("check_key_age.py", "--max-age-days", "30").returncode == 0
    assert run_py("check_key_age.py", "--max-age-days", "5").returncode == 1


def test_nothing_to_check_is_said_plainly(run_py):
    result = run_py("check_key_age.py")
    assert result.returncode == 0
    assert "Nothing to check" in result.stdout


def test_empty_metadata_file_is_nothing_to_check(run_py, write_metadata):
    write_metadata()
    result = run_py("check_key_age.py")
    assert result.returncode == 0
    assert "has no records" in result.stdout


def test_env_file_limits_the_check_to_configured_keys(run_py, write_metadata, tmp_path):
    # OLD was retired: it is in the metadata but no longer configured, so it must not fail the check.
    write_metadata(record(YOUNG, "current", 5), record(OLD, "retired", 400))
    (tmp_path / ".env").write_text(f"MCP_API_KEYS={YOUNG}\n")
    result = run_py("check_key_age.py", "--env-file", ".env")
    assert result.returncode == 0, result.stdout
    assert "current" in result.stdout
    assert "retired (" not in result.stdout
    assert "1 metadata record(s) not checked" in result.stdout


def test_configured_key_without_metadata_is_age_unknown(run_py, write_metadata, tmp_path):
    write_metadata(record(YOUNG, "current", 5))
    (tmp_path / ".env").write_text(f"MCP_API_KEYS={YOUNG},{UNTRACKED}\n")
    result = run_py("check_key_age.py", "--env-file", ".env")
    assert result.returncode == 0
    assert "age unknown" in result.stdout
    assert hint(UNTRACKED) in result.stdout
    assert UNTRACKED not in result.stdout  # a hint, never the key
    assert run_py("check_key_age.py", "--env-file", ".env", "--strict").returncode == 1


def test_digest_entries_match_metadata(run_py, write_metadata, tmp_path):
    write_metadata(record(OLD, "hashed-old", 200))
    (tmp_path / ".env").write_text(f"MCP_API_KEYS=sha256:{digest(OLD)}\n")
    result = run_py("check_key_age.py", "--env-file", ".env")
    assert result.returncode == 1
    assert f"hashed-old ({hint(OLD)})" in result.stdout


def test_config_created_dates_and_entry_forms(run_py, write_metadata, tmp_path):
    # Metadata says YOUNG is young, but the config's own created date wins.
    write_metadata(record(YOUNG, "meta-name", 3))
    old_date = (datetime.now(timezone.utc) - timedelta(days=100)).date().isoformat()
    (tmp_path / "config.yaml").write_text(
        "gitea_url: https://gitea.example.org\n"
        "api_keys:\n"
        f'  - key: "{YOUNG}"\n'
        "    name: chatgpt-workspace\n"
        f"    created: {old_date}\n"
        f'  - sha256: "{digest(OLD)}"\n'
        "    name: no-date\n"
        f'  - "sha256:{digest(UNTRACKED)}"\n'
    )
    result = run_py("check_key_age.py", "--config", "config.yaml")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"chatgpt-workspace ({hint(YOUNG)})" in out and "100 days old" in out
    assert "no-date (sha256:" in out and out.count("age unknown") == 2
    assert YOUNG not in out


def test_config_and_env_file_together(run_py, tmp_path):
    young_date = (datetime.now(timezone.utc) - timedelta(days=7)).date().isoformat()
    (tmp_path / "config.yaml").write_text(
        f'api_keys:\n  - sha256: "{digest(YOUNG)}"\n    created: {young_date}\n'
    )
    (tmp_path / ".env").write_text(f"MCP_API_KEYS={UNTRACKED}\n")
    result = run_py("check_key_age.py", "--config", "config.yaml", "--env-file", ".env")
    assert result.returncode == 0
    assert "7 days old" in result.stdout and "age unknown" in result.stdout


def test_metadata_file_from_environment(run_py, write_metadata, make_env):
    write_metadata(record(OLD, "elsewhere", 150), name="keys.jsonl")
    assert run_py("check_key_age.py").returncode == 0  # default file absent: nothing to check
    assert run_py("check_key_age.py", env=make_env(KEY_METADATA_FILE="keys.jsonl")).returncode == 1
    assert run_py("check_key_age.py", "--metadata-file", "keys.jsonl").returncode == 1


@pytest.mark.parametrize(
    "args",
    [
        ("--metadata-file", "missing.jsonl"),
        ("--env-file", "missing.env"),
        ("--config", "missing.yaml"),
    ],
)
def test_named_files_that_are_missing_exit_2(run_py, args):
    result = run_py("check_key_age.py", *args)
    assert result.returncode == 2
    assert "missing" in result.stderr


def test_malformed_metadata_exits_2_with_line_number(run_py, tmp_path):
    good = json.dumps(record(YOUNG, "ok", 1))
    (tmp_path / ".key-metadata.jsonl").write_text(f"{good}\n\n{{not json\n")
    result = run_py("check_key_age.py")
    assert result.returncode == 2
    assert ".key-metadata.jsonl:3" in result.stderr


def test_invalid_yaml_exits_2(run_py, tmp_path):
    (tmp_path / "config.yaml").write_text("api_keys: [unclosed\n")
    result = run_py("check_key_age.py", "--config", "config.yaml")
    assert result.returncode == 2
    assert "not valid YAML" in result.stderr


def test_invalid_configured_entry_exits_2_without_echoing_it(run_py, write_metadata, tmp_path):
    write_metadata(record(YOUNG, "current", 5))
    (tmp_path / ".env").write_text(f"MCP_API_KEYS={YOUNG},deadbeef-not-a-key\n")
    result = run_py("check_key_age.py", "--env-file", ".env")
    assert result.returncode == 2
    assert "entry 2" in result.stderr
    assert "deadbeef" not in result.stderr + result.stdout
    assert "current" in result.stdout  # the valid key is still reported
