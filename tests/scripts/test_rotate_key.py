"""scripts/rotate_key.py: the grace-period line, the steps, and --apply touching one line only."""

from __future__ import annotations

import hashlib
import json
import re
import stat

OLD = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4
OTHER_DIGEST = hashlib.sha256(OTHER.encode()).hexdigest()

ENV_TEXT = (
    "# AegisGitea MCP settings\n"
    "GITEA_URL=https://gitea.example.org\n"
    "GITEA_TOKEN='abc def'\n"
    f"MCP_API_KEYS={OLD}\n"
    "LOG_LEVEL=INFO  # trailing comment\n"
)


def new_key_from(output: str) -> str:
    match = re.search(r"NEW API KEY.*\n\s*\n\s*([0-9a-f]{64})\n", output)
    assert match, output
    return match.group(1)


def test_prints_grace_and_final_lines_without_touching_env(run_py, tmp_path):
    env = tmp_path / ".env"
    env.write_text(ENV_TEXT)
    result = run_py("rotate_key.py")
    assert result.returncode == 0, result.stderr
    new = new_key_from(result.stdout)
    assert new != OLD
    assert f"MCP_API_KEYS={OLD},{new}\n" in result.stdout
    assert f"MCP_API_KEYS={new}\n" in result.stdout
    # The steps an operator needs, in order.
    out = result.stdout
    positions = [
        out.index(s)
        for s in (
            "grace period",
            "docker compose up -d",
            "curl",
            "ChatGPT",
            f"MCP_API_KEYS={new}\n",
        )
    ]
    assert positions == sorted(positions)
    assert (
        f'"key_hint": "{OLD[:8]}...{OLD[-4:]}"' in out
    )  # how to watch the old key in the audit log
    assert env.read_text() == ENV_TEXT
    assert not (tmp_path / ".env.bak").exists()
    assert not (tmp_path / ".key-metadata.jsonl").exists()


def test_apply_rewrites_only_the_keys_line(run_py, tmp_path):
    env = tmp_path / ".env"
    env.write_bytes(ENV_TEXT.replace("\n", "\r\n").encode())  # line endings must survive too
    env.chmod(0o644)
    result = run_py("rotate_key.py", "--apply")
    assert result.returncode == 0, result.stderr
    new = new_key_from(result.stdout)

    before = ENV_TEXT.replace("\n", "\r\n").encode().split(b"\r\n")
    after = env.read_bytes().split(b"\r\n")
    assert len(after) == len(before)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b]
    assert changed == [3]
    assert after[3] == f"MCP_API_KEYS={OLD},{new}".encode()

    backup = tmp_path / ".env.bak"
    assert backup.read_bytes() == ENV_TEXT.replace("\n", "\r\n").encode()
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert "DONE" in result.stdout


def test_apply_keeps_export_prefix_and_drops_quotes(run_py, tmp_path):
    env = tmp_path / "prod.env"
    env.write_text(f'export MCP_API_KEYS="{OLD}, sha256:{OTHER_DIGEST}"\n')
    result = run_py("rotate_key.py", "--env-file", "prod.env", "--apply")
    assert result.returncode == 0, result.stderr
    new = new_key_from(result.stdout)
    assert env.read_text() == f"export MCP_API_KEYS={OLD},sha256:{OTHER_DIGEST},{new}\n"
    assert (tmp_path / "prod.env.bak").exists()
    assert "2 current keys" in result.stdout  # warns that the final line drops both


def test_apply_appends_line_when_missing(run_py, tmp_path):
    env = tmp_path / ".env"
    env.write_text("GITEA_URL=https://gitea.example.org")  # no trailing newline
    result = run_py("rotate_key.py", "--apply")
    assert result.returncode == 0, result.stderr
    new = new_key_from(result.stdout)
    assert env.read_text() == f"GITEA_URL=https://gitea.example.org\nMCP_API_KEYS={new}\n"
    assert "no grace period" in result.stdout


def test_apply_refuses_ambiguous_file_before_issuing_a_key(run_py, tmp_path):
    env = tmp_path / ".env"
    text = f"MCP_API_KEYS={OLD}\n#MCP_API_KEYS=commented-out-is-fine\nMCP_API_KEYS={OTHER}\n"
    env.write_text(text)
    result = run_py("rotate_key.py", "--apply", "--save-metadata")
    assert result.returncode == 2
    assert "lines (1, 3)" in result.stderr
    assert env.read_text() == text
    assert not (tmp_path / ".env.bak").exists()
    assert not (tmp_path / ".key-metadata.jsonl").exists()
    assert not re.search(r"[0-9a-f]{64}", result.stdout)


def test_apply_without_env_file_fails(run_py, tmp_path):
    result = run_py("rotate_key.py", "--apply")
    assert result.returncode == 2
    assert ".env does not exist" in result.stderr
    assert not (tmp_path / ".env").exists()


def test_without_env_file_only_the_new_key(run_py):
    result = run_py("rotate_key.py")
    assert result.returncode == 0
    new = new_key_from(result.stdout)
    assert re.findall(r"MCP_API_KEYS=\S+", result.stdout) == [f"MCP_API_KEYS={new}"]


def test_save_metadata_records_new_key_and_names_old_one(run_py, tmp_path):
    (tmp_path / ".env").write_text(f"MCP_API_KEYS=sha256:{OTHER_DIGEST}\n")
    # The old key was configured by digest: its hint and name are known only from metadata.
    old_record = {
        "name": "old-workspace",
        "created": "2026-01-01T00:00:00Z",
        "key_hint": "fedcba98...3210",
        "sha256": OTHER_DIGEST,
    }
    meta = tmp_path / ".key-metadata.jsonl"
    meta.write_text(json.dumps(old_record) + "\n")

    result = run_py("rotate_key.py", "--save-metadata", "--name", "new-workspace")
    assert result.returncode == 0, result.stderr
    new = new_key_from(result.stdout)
    assert "old-workspace (fedcba98...3210)" in result.stdout
    assert '"key_hint": "fedcba98...3210"' in result.stdout
    assert f"MCP_API_KEYS=sha256:{OTHER_DIGEST},{new}" in result.stdout

    records = [json.loads(line) for line in meta.read_text().splitlines()]
    assert records[0] == old_record
    assert records[1]["name"] == "new-workspace"
    assert records[1]["sha256"] == hashlib.sha256(new.encode()).hexdigest()
    assert new not in meta.read_text()


def test_bad_current_entry_is_reported_without_its_value(run_py, tmp_path):
    (tmp_path / ".env").write_text("MCP_API_KEYS=not-a-valid-key-xyz\n")
    result = run_py("rotate_key.py")
    assert result.returncode == 0
    assert "entry 1" in result.stderr and "not hexadecimal" in result.stderr
    assert "not-a-valid-key-xyz" not in result.stderr


def test_chatgpt_moves_by_changing_the_connector_url(run_py, tmp_path):
    (tmp_path / ".env").write_text(ENV_TEXT)
    result = run_py("rotate_key.py")
    assert result.returncode == 0, result.stderr
    chatgpt = [line for line in result.stdout.splitlines() if "ChatGPT" in line]
    assert chatgpt and all("Bearer" not in line for line in chatgpt)
    assert any("/mcp/sse?api_key=<new key>" in line for line in chatgpt)
    assert "it is the connector URL that changes" in result.stdout
