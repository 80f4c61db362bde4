"""get_file_tree and get_file_contents: content, limits, binary, policy and path attacks."""

from __future__ import annotations

import json

import pytest

from ..conftest import with_settings

LIGHTHOUSE = {"owner": "northwind", "repo": "lighthouse"}
CONTENTS_KEYS = {
    "owner",
    "repo",
    "path",
    "ref",
    "size",
    "binary",
    "text",
    "truncated",
    "start_line",
    "end_line",
    "total_lines",
}


@pytest.mark.gen_test
async def test_reads_a_text_file(call):
    result = await call("get_file_contents", **LIGHTHOUSE, path="README.md")
    assert CONTENTS_KEYS <= set(result)
    assert result["text"].startswith("# Lighthouse")
    assert result["ref"] == "main" and result["binary"] is False and result["truncated"] is False
    assert result["start_line"] == 1 and result["end_line"] == result["total_lines"]
    assert result["url"] == "https://git.example.com/northwind/lighthouse/src/branch/main/README.md"


@pytest.mark.gen_test
async def test_line_ranges(call):
    whole = await call("get_file_contents", **LIGHTHOUSE, path="README.md")
    lines = whole["text"].splitlines(keepends=True)
    part = await call("get_file_contents", **LIGHTHOUSE, path="README.md", start_line=3, end_line=5)
    assert part["text"] == "".join(lines[2:5])
    assert (part["start_line"], part["end_line"]) == (3, 5)
    message = await call.error(
        "get_file_contents", **LIGHTHOUSE, path="README.md", start_line=5, end_line=3
    )
    assert "end_line must not be before start_line" in message
    assert "past the end" in await call.error(
        "get_file_contents", **LIGHTHOUSE, path="README.md", start_line=10_000
    )


@pytest.mark.gen_test
async def test_a_file_over_the_limit_comes_in_parts(call, ctx):
    limit = ctx.settings.max_result_bytes
    first = await call("get_file_contents", **LIGHTHOUSE, path="data/sample-metrics.csv")
    assert first["size"] > limit and first["truncated"] is True
    assert first["next_start_line"] == first["end_line"] + 1
    assert f"start_line={first['next_start_line']}" in first["note"]
    assert len(json.dumps(first).encode()) <= limit
    rest = await call(
        "get_file_contents",
        **LIGHTHOUSE,
        path="data/sample-metrics.csv",
        start_line=first["next_start_line"],
    )
    assert rest["truncated"] is False and rest["end_line"] == rest["total_lines"]
    assert len((first["text"] + rest["text"]).encode()) == first["size"]


@with_settings(max_result_bytes=5000)
@pytest.mark.gen_test
async def test_the_result_limit_is_a_setting(call):
    result = await call("get_file_contents", **LIGHTHOUSE, path="data/sample-metrics.csv")
    assert result["truncated"] and len(json.dumps(result).encode()) <= 5000


@pytest.mark.gen_test
async def test_binary_files_give_metadata_only(call):
    result = await call("get_file_contents", **LIGHTHOUSE, path="docs/images/logo.png")
    assert result["binary"] is True and result["text"] is None and result["size"] > 0


@pytest.mark.gen_test
async def test_hidden_unicode_is_stripped_and_secrets_redacted(call):
    roles = await call("get_file_contents", **LIGHTHOUSE, path="src/lighthouse/auth/roles.py")
    for char in ("\u202e", "\u2066", "\u2069", "\u200b"):
        assert char not in roles["text"]
    assert roles["sanitized"]["invisible_characters_removed"] >= 3
    backup = await call("get_file_contents", **LIGHTHOUSE, path="tools/backup/backup_to_s3.sh")
    assert "AKIAIOSFODNN7EXAMPLE" not in backup["text"]
    assert "BEGIN RSA PRIVATE KEY" not in backup["text"]
    assert "[REDACTED:aws-access-key-id]" in backup["text"]
    assert {"aws-access-key-id", "aws-secret-access-key", "private-key"} <= set(
        backup["sanitized"]["secrets_redacted"]
    )


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "deploy/id_rsa",
        "certs/server.pem",
        "DEPLOY/ID_RSA",
        "config/.env.local",
        "a/secrets.yaml",
        "x.p12",
    ],
)
@pytest.mark.gen_test
async def test_sensitive_files_are_refused_without_asking_gitea(call, gitea, logs, path):
    message = await call.error("get_file_contents", **LIGHTHOUSE, path=path)
    assert message.startswith("Blocked by policy")
    assert gitea.requested_paths() == []
    [audit] = logs.audit("tool_call")
    assert audit["status"] == "denied" and audit["reason"] == "sensitive_path"


@with_settings(sensitive_paths=("*.md",))
@pytest.mark.gen_test
async def test_sensitive_paths_setting_replaces_the_defaults(call):
    assert (await call.error("get_file_contents", **LIGHTHOUSE, path="README.md")).startswith(
        "Blocked by policy"
    )
    env_file = await call("get_file_contents", **LIGHTHOUSE, path=".env")
    assert env_file["text"] is not None


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/passwd",
        "src/../../x",
        "%2e%2e/etc/passwd",
        "%252e%252e/x",
        "/etc/passwd",
        "src\\lighthouse",
        "README.md\x00.png",
        "a/" * 3000,
        "..",
        "src/./x",
    ],
)
@pytest.mark.gen_test
async def test_path_attacks_are_refused_before_gitea(call, gitea, path):
    message = await call.error("get_file_contents", **LIGHTHOUSE, path=path)
    assert "path" in message
    assert gitea.requested_paths() == []
    assert "path" in await call.error("get_file_tree", **LIGHTHOUSE, path=path)
    assert gitea.requested_paths() == []


@pytest.mark.parametrize("ref", ["a..b", "-x", "main~1", "refs/heads/ma:in", "x" * 300, "@{-1}"])
@pytest.mark.gen_test
async def test_bad_refs_are_refused_before_gitea(call, gitea, ref):
    assert "ref" in await call.error("get_file_contents", **LIGHTHOUSE, path="README.md", ref=ref)
    assert gitea.requested_paths() == []


@pytest.mark.gen_test
async def test_refs_tags_and_missing_files(call):
    tagged = await call("get_file_contents", **LIGHTHOUSE, path="README.md", ref="v1.0.0")
    assert tagged["ref"] == "v1.0.0"
    missing = await call.error("get_file_contents", **LIGHTHOUSE, path="no/such/file.txt")
    assert "not found, or not visible" in missing
    assert "get_file_tree" in await call.error("get_file_contents", **LIGHTHOUSE, path="src")


@pytest.mark.gen_test
async def test_tree_root_and_subdirectory(call):
    root = await call("get_file_tree", **LIGHTHOUSE)
    kinds = [entry["type"] for entry in root["items"]]
    assert kinds == sorted(kinds, key=lambda k: k != "dir")  # directories first
    assert {"path": "src", "type": "dir"} in root["items"]
    env_entry = next(e for e in root["items"] if e["path"] == ".env")
    assert env_entry["blocked"] is True
    nested = await call("get_file_tree", **LIGHTHOUSE, path="src/lighthouse/checks")
    assert {e["path"] for e in nested["items"]} >= {"src/lighthouse/checks/http"}
    assert "get_file_contents" in await call.error("get_file_tree", **LIGHTHOUSE, path="README.md")


@pytest.mark.gen_test
async def test_recursive_tree_pages_follow_gitea_truncation(call):
    first = await call("get_file_tree", **LIGHTHOUSE, recursive=True, limit=20)
    assert first["has_more"] is True and first["total"] > 20
    seen = [e["path"] for e in first["items"]]
    page = 2
    while True:
        result = await call("get_file_tree", **LIGHTHOUSE, recursive=True, limit=20, page=page)
        seen += [e["path"] for e in result["items"]]
        if not result["has_more"]:
            break
        page += 1
    assert len(seen) == first["total"] == len(set(seen))
    assert "src/lighthouse/checks/http/probe.py" in seen
    sub = await call(
        "get_file_tree", **LIGHTHOUSE, path="src/lighthouse/checks", recursive=True, limit=50
    )
    assert "src/lighthouse/checks/http/probe.py" in [e["path"] for e in sub["items"]]
    assert all(e["path"].startswith("src/lighthouse/checks/") for e in sub["items"])


@pytest.mark.gen_test
async def test_empty_repository(call):
    message = await call.error("get_file_tree", owner="northwind", repo="empty-sandbox")
    assert "empty" in message
