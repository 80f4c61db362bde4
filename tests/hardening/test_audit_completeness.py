"""Nothing lost: under concurrent mixed traffic, the audit file holds exactly the records each
request and each tool call must leave, every line parses, and no secret is anywhere.

Complements tests/web/test_audit_log.py (sequential, counts only): here every request is
matched to its own records by request id, with hundreds in flight at once across transports.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from tornado.httpclient import AsyncHTTPClient

from ..conftest import KEY, OTHER_KEY, UNKNOWN_KEY, with_settings
from ..sse_reader import SseReader

GITEA_TOKEN = "gitea-bot-token-4b1d9c2e77aa"
N = 25  # requests of each kind, all in flight together

AUTH_OK = ("api_authentication", "success")


def fail(reason):
    return [("api_authentication", "failure"), ("access_denied", reason)]


def tool(status):
    return ("tool_call", status)


def records_of(record) -> tuple[str, str]:
    event = record["event"]
    if event == "api_authentication":
        return event, record["status"]
    if event == "access_denied":
        return event, record["reason"]
    if event == "tool_call":
        return event, record["status"]
    return event, ""


@with_settings(
    max_auth_failures=3,
    auth_failure_window=300,
    gitea_token=GITEA_TOKEN,
    trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
    log_level="info",
    # A storm from one key and one socket address: the per-key and per-address caps are
    # tested elsewhere; here every call must run and be audited.
    max_calls_per_key=10_000,
    max_connections_per_ip=10_000,
)
@pytest.mark.gen_test(timeout=90)
async def test_every_request_and_tool_call_leaves_exactly_its_records(api, logs, base_url, ctx):
    http = AsyncHTTPClient(force_instance=True, max_clients=64)
    expected: dict[str, list[tuple[str, str]]] = {}

    async def send(
        request_id, path, *, method="GET", key=KEY, ip="10.0.0.1", body=None, headers=None, expect
    ):
        expected[request_id] = expect
        all_headers = {"X-Request-Id": request_id, "X-Forwarded-For": ip, **(headers or {})}
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
            body = json.dumps(body)
        elif method == "POST":
            body = ""
        return await http.fetch(
            base_url + path,
            method=method,
            headers=all_headers,
            body=body,
            raise_error=False,
            request_timeout=60,
        )

    # An address that is blocked before the storm begins.
    for n in range(3):
        await send(
            f"preblock-{n}",
            "/mcp/tools",
            key=UNKNOWN_KEY,
            ip="10.9.9.9",
            expect=fail("invalid_api_key") + ([("auth_rate_limit_exceeded", "")] if n == 2 else []),
        )

    # A legacy session to post into during the storm.
    stream = await SseReader.open(
        base_url + "/mcp/sse",
        headers={
            "Authorization": f"Bearer {KEY}",
            "X-Request-Id": "legacy-stream",
            "X-Forwarded-For": "10.0.0.2",
        },
    )
    _, endpoint = await stream.next()
    expected["legacy-stream"] = [AUTH_OK]

    call = lambda name, **arguments: {"tool": name, "arguments": arguments}  # noqa: E731
    rpc_call = lambda id_, name, **arguments: {  # noqa: E731
        "jsonrpc": "2.0",
        "id": id_,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    jobs = []
    for n in range(N):
        jobs += [
            send(f"good-{n}", "/mcp/tools", ip=f"10.0.1.{n}", expect=[AUTH_OK]),
            send(f"query-{n}", f"/mcp/tools?api_key={OTHER_KEY}", key=None, expect=[AUTH_OK]),
            send(
                f"badkey-{n}",
                "/mcp/tools",
                key=UNKNOWN_KEY,
                ip=f"10.1.{n}.1",
                expect=fail("invalid_api_key"),
            ),
            send(
                f"badquery-{n}",
                f"/mcp/tools?api_key={UNKNOWN_KEY}",
                key=None,
                ip=f"10.2.{n}.1",
                expect=fail("invalid_api_key"),
            ),
            send(f"missing-{n}", "/mcp/tools", key=None, expect=fail("missing_api_key")),
            send(
                f"misplaced-{n}",
                f"/mcp?api_key={KEY}",
                key=None,
                expect=fail("query_key_not_allowed"),
            ),
            send(
                f"blocked-{n}",
                "/mcp/tools",
                ip="10.9.9.9",
                expect=[("access_denied", "rate_limited")],
            ),
            send(
                f"rest-ok-{n}",
                "/mcp/tool/call",
                method="POST",
                body=call("echo", text="hi"),
                expect=[AUTH_OK, tool("success")],
            ),
            send(
                f"rest-fail-{n}",
                "/mcp/tool/call",
                method="POST",
                body=call("fail"),
                expect=[AUTH_OK, tool("error")],
            ),
            send(
                f"rest-denied-{n}",
                "/mcp/tool/call",
                method="POST",
                body=call("denied"),
                expect=[AUTH_OK, tool("denied")],
            ),
            send(
                f"rest-crash-{n}",
                "/mcp/tool/call",
                method="POST",
                body=call("crash"),
                expect=[AUTH_OK, tool("error")],
            ),
            send(
                f"rest-invalid-{n}",
                "/mcp/tool/call",
                method="POST",
                body=call("echo", text=5),
                expect=[AUTH_OK, tool("error")],
            ),
            send(
                f"mcp-ok-{n}",
                "/mcp",
                method="POST",
                body=rpc_call(n, "echo", text="x"),
                expect=[AUTH_OK, tool("success")],
            ),
            send(
                f"mcp-batch-{n}",
                "/mcp",
                method="POST",
                headers={"MCP-Protocol-Version": "2025-03-26"},
                body=[rpc_call(1, "echo", text="a"), rpc_call(2, "fail"), rpc_call(3, "nope")],
                expect=[AUTH_OK, tool("success"), tool("error"), tool("error")],
            ),
            send(
                f"sse-post-{n}",
                endpoint,
                method="POST",
                ip="10.0.0.2",
                body=rpc_call(f"s{n}", "slow", seconds=0.05, steps=1, label=f"audit-{n}"),
                expect=[AUTH_OK, tool("success")],
            ),
        ]
    responses = await asyncio.gather(*jobs)
    assert all(r.code < 500 for r in responses)
    replies = set()
    while len(replies) < N:
        replies.add((await stream.next_json(timeout=10))["id"])
    stream.close()
    http.close()

    audit_text = logs.audit_text()
    lines = [line for line in audit_text.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line parses
    found = collections.defaultdict(list)
    for record in records:
        if record["event"] == "audit_log_opened":
            continue
        assert record.get("request_id"), record
        found[record["request_id"]].append(records_of(record))
    mismatches = {
        rid: (sorted(found.get(rid, [])), sorted(want))
        for rid, want in expected.items()
        if sorted(found.get(rid, [])) != sorted(want)
    }
    assert not mismatches, list(mismatches.items())[:5]
    assert set(found) == set(expected), set(found) ^ set(expected)

    # Every audit line also went to stdout, and nothing secret went anywhere.
    stdout_audit = collections.Counter(
        json.dumps(r, sort_keys=True)
        for r in logs.stdout()
        if r["event"]
        in ("api_authentication", "access_denied", "tool_call", "auth_rate_limit_exceeded")
    )
    file_audit = collections.Counter(
        json.dumps(r, sort_keys=True) for r in records if r["event"] != "audit_log_opened"
    )
    assert stdout_audit == file_audit
    everything = logs.stdout_text() + audit_text
    for secret in (KEY, OTHER_KEY, UNKNOWN_KEY, GITEA_TOKEN):
        assert secret not in everything and secret[:16] not in everything
    assert "api_key=" not in everything
    assert "/etc/shadow" not in audit_text  # the crash tool's exception stays out of the audit
    query = parse_qs(urlsplit(endpoint).query)
    assert "api_key" not in query
