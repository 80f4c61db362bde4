"""The audit trail under real traffic: one record per decision, grep-compatible, no secrets."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from ..conftest import KEY, OTHER_KEY, UNKNOWN_KEY, with_settings

REPO = Path(__file__).resolve().parents[2]
GITEA_TOKEN = "gitea-bot-token-5f0c3a9e71d2"


async def mixed_traffic(api) -> dict[str, int]:
    """Every kind of request; returns what the audit log must count."""
    await api.request("/mcp/tools")  # header, success
    await api.request(f"/mcp/tools?api_key={KEY}", key=None)  # query, success
    await api.request(
        f"/mcp/tool/call?api_key={OTHER_KEY}",
        "POST",
        key=None,
        json_body={"tool": "echo", "arguments": {"text": "hi"}},
    )
    await api.request("/mcp/tool/call", "POST", json_body={"tool": "fail", "arguments": {}})
    await api.request("/mcp/tool/call", "POST", json_body={"tool": "denied", "arguments": {}})
    await api.request("/mcp/tools", key=UNKNOWN_KEY)  # invalid
    await api.request(f"/mcp/tools?api_key={UNKNOWN_KEY}", key=None)  # invalid, via query
    await api.request("/mcp/tools", key=None)  # missing
    await api.request(f"/mcp?api_key={KEY}", key=None)  # query key where not allowed
    await api.request(f"/elsewhere?api_key={KEY}&x=1", key=None)
    await api.request("/mcp/tools", key=UNKNOWN_KEY)  # third invalid: blocks (limit 3)
    await api.request("/mcp/tools", key=KEY)  # rate limited
    return {
        "success": 5,
        "failure": 6,
        "invalid_api_key": 3,
        "missing_api_key": 1,
        "query_key_not_allowed": 2,
        "rate_limited": 1,
        "blocked_ips": 1,
        "tool_calls": 3,
    }


@with_settings(max_auth_failures=3, gitea_token=GITEA_TOKEN)
@pytest.mark.gen_test
async def test_one_record_per_decision_and_grep_compatible(api, logs):
    expected = await mixed_traffic(api)
    text = logs.audit_text()
    lines = [line for line in text.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line parses
    auth = [r for r in records if r["event"] == "api_authentication"]
    assert sum(r["status"] == "success" for r in auth) == expected["success"]
    assert sum(r["status"] == "failure" for r in auth) == expected["failure"]
    reasons = [r["reason"] for r in records if r["event"] == "access_denied"]
    for reason in ("invalid_api_key", "missing_api_key", "query_key_not_allowed", "rate_limited"):
        assert reasons.count(reason) == expected[reason], reason
    assert len([r for r in records if r["event"] == "tool_call"]) == expected["tool_calls"]
    assert {r["status"] for r in records if r["event"] == "tool_call"} == {
        "success",
        "error",
        "denied",
    }

    # The guide's grep recipes count the same.
    def grep(pattern: str) -> int:
        return sum(bool(re.search(pattern, line)) for line in lines)

    assert grep("api_authentication") == expected["success"] + expected["failure"]
    assert grep("api_authentication.*success") == expected["success"]
    assert grep("access_denied.*invalid_api_key") == expected["invalid_api_key"]
    assert grep("auth_rate_limit_exceeded") == expected["blocked_ips"]

    summary = subprocess.run(
        ["bash", str(REPO / "scripts/auth_summary.sh"), logs.audit_path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    numbers = dict(re.findall(r"^\s*([A-Za-z_ ()-]+):\s+(\d+)$", summary, re.M))
    assert int(numbers["Total auth attempts"]) == expected["success"] + expected["failure"]
    assert int(numbers["Successful"]) == expected["success"]
    assert int(numbers["Rate-limit events"]) == expected["blocked_ips"]


@with_settings(max_auth_failures=3, gitea_token=GITEA_TOKEN)
@pytest.mark.gen_test
async def test_no_secret_in_any_log_line(api, logs):
    await mixed_traffic(api)
    # The SSE endpoint event hands the query key back to its caller: that is a response, and
    # must not leak into a log line either.
    everything = logs.stdout_text() + logs.audit_text()
    assert "http_request" in everything and "tool_call" in everything
    for secret in (KEY, OTHER_KEY, UNKNOWN_KEY, GITEA_TOKEN):
        assert secret not in everything
        assert secret[:20] not in everything  # not even a long prefix
    assert "api_key=" not in everything
