"""Graceful shutdown of the real process under load.

SIGTERM stops accepting connections, refuses new requests on open keep-alive connections,
lets calls in flight finish within SHUTDOWN_TIMEOUT (legacy SSE calls deliver their replies
before their stream ends), ends standalone streams at once, flushes the audit log and exits 0.

Complements tests/test_cli.py (SIGTERM after quiet sequential requests).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from ..conftest import KEY, OTHER_KEY
from ..sse_reader import SseReader
from .conftest import RawConnection, request_bytes
from .process import ServerProcess

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {KEY}"}
SECONDS = 1.5  # how long each in-flight call takes


def rpc(id_, method, **params):
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}


async def read_until_closed(reader: SseReader, timeout: float) -> list[dict]:
    messages = []
    while True:
        event, data = await reader.next(timeout)
        if event == "<closed>":
            return messages
        if event == "message":
            messages.append(json.loads(data))


async def scenario(server: ServerProcess) -> dict:
    base = server.base_url
    http = AsyncHTTPClient(force_instance=True, max_clients=64)
    sse = {**AUTH, "Accept": "text/event-stream"}

    legacy = []
    for n in range(3):
        reader = await SseReader.open(
            base + "/mcp/sse", headers={**sse, "X-Request-Id": f"legacy-{n}"}
        )
        legacy.append((reader, (await reader.next())[1]))
    standalone = [
        await SseReader.open(base + "/mcp", headers={**sse, "X-Request-Id": f"get-{n}"})
        for n in range(3)
    ]
    keepalive_conns = []
    for n in range(3):
        conn = await RawConnection(server.port).__aenter__()
        await conn.send(request_bytes("GET", "/mcp/tools", {"X-Request-Id": f"ka-before-{n}"}))
        assert (await conn.response())[0] == 200
        keepalive_conns.append(conn)

    # Calls in flight when the signal arrives: REST, Streamable HTTP (JSON and event stream),
    # and legacy SSE (202 now, the reply later on the stream).
    rest = [
        asyncio.ensure_future(
            http.fetch(
                base + "/mcp/tool/call",
                method="POST",
                raise_error=False,
                request_timeout=30,
                headers={**AUTH, "Content-Type": "application/json", "X-Request-Id": f"rest-{n}"},
                body=json.dumps(
                    {"tool": "slow", "arguments": {"seconds": SECONDS, "label": f"r{n}"}}
                ),
            )
        )
        for n in range(8)
    ]
    mcp_json = [
        asyncio.ensure_future(
            http.fetch(
                base + "/mcp",
                method="POST",
                raise_error=False,
                request_timeout=30,
                headers={**AUTH, "Content-Type": "application/json", "X-Request-Id": f"mcp-{n}"},
                body=json.dumps(
                    rpc(
                        n,
                        "tools/call",
                        name="slow",
                        arguments={"seconds": SECONDS, "label": f"m{n}"},
                    )
                ),
            )
        )
        for n in range(4)
    ]
    mcp_sse = [
        await SseReader.open(
            base + "/mcp",
            method="POST",
            headers={
                **AUTH,
                "Content-Type": "application/json",
                "X-Request-Id": f"mcp-sse-{n}",
                "Accept": "application/json, text/event-stream",
            },
            body=json.dumps(
                rpc(
                    n,
                    "tools/call",
                    name="slow",
                    arguments={"seconds": SECONDS, "steps": 3},
                    _meta={"progressToken": f"p{n}"},
                )
            ),
        )
        for n in range(3)
    ]
    for n, (_, endpoint) in enumerate(legacy):
        accepted = await http.fetch(
            base + endpoint,
            method="POST",
            raise_error=False,
            headers={
                **AUTH,
                "Content-Type": "application/json",
                "X-Request-Id": f"legacy-post-{n}",
            },
            body=json.dumps(
                rpc(
                    f"l{n}",
                    "tools/call",
                    name="slow",
                    arguments={"seconds": SECONDS, "label": f"l{n}"},
                )
            ),
        )
        assert accepted.code == 202

    # Quick requests keep arriving on new connections until the listener is gone.
    quick: dict[str, int] = {}
    stop_load = asyncio.Event()

    async def load():
        n = 0
        while not stop_load.is_set():
            request_id = f"quick-{n}"
            n += 1
            try:
                response = await http.fetch(
                    base + "/mcp/tools",
                    headers={**AUTH, "X-Request-Id": request_id},
                    raise_error=False,
                    request_timeout=5,
                )
                quick[request_id] = response.code
            except (OSError, HTTPClientError):
                pass  # refused: the listener is closed
            await asyncio.sleep(0.01)

    loaders = [asyncio.ensure_future(load()) for _ in range(4)]
    await asyncio.sleep(0.5)  # every slow call is running
    signalled = server.signal()
    await asyncio.sleep(0.3)

    outcome: dict = {"signalled": signalled}
    try:
        await asyncio.open_connection("127.0.0.1", server.port)
        outcome["new_connection"] = "accepted"
    except OSError:
        outcome["new_connection"] = "refused"
    # A new request on a connection that was already open: refused, and the connection closed.
    outcome["keepalive"] = []
    for n, conn in enumerate(keepalive_conns):
        await conn.send(request_bytes("GET", "/mcp/tools", {"X-Request-Id": f"ka-after-{n}"}))
        status, headers, _ = await conn.response()
        outcome["keepalive"].append(
            (status, headers.get("retry-after"), await conn.closed_by_server(3))
        )
    outcome["standalone_closed_after"] = []
    for reader in standalone:
        await reader.closed(timeout=5)
        outcome["standalone_closed_after"].append(time.monotonic() - signalled)
    outcome["rest"] = [(r.code, json.loads(r.body)) for r in await asyncio.gather(*rest)]
    outcome["mcp_json"] = [(r.code, json.loads(r.body)) for r in await asyncio.gather(*mcp_json)]
    outcome["mcp_sse"] = [await read_until_closed(reader, 10) for reader in mcp_sse]
    outcome["legacy"] = [await read_until_closed(reader, 10) for reader, _ in legacy]
    stop_load.set()
    await asyncio.gather(*loaders)
    outcome["quick"] = quick
    for reader in [*standalone, *mcp_sse] + [r for r, _ in legacy]:
        reader.close()
    http.close()
    return outcome


def test_sigterm_mid_load_finishes_calls_closes_streams_and_loses_no_audit_line(tmp_path):
    server = ServerProcess(
        tmp_path, SHUTDOWN_TIMEOUT="10", SSE_KEEPALIVE="0.5", MAX_CALLS_PER_KEY="1000"
    )
    try:
        outcome = asyncio.run(scenario(server))
        code = server.wait(15)
    finally:
        server.kill()
    assert code == 0
    exited_after = time.monotonic() - outcome["signalled"]
    assert exited_after < 10, "the drain should end when the last call does, not at the deadline"

    assert outcome["new_connection"] == "refused"
    assert outcome["keepalive"] == [(503, "1", True)] * 3
    assert max(outcome["standalone_closed_after"]) < 3
    for status, result in outcome["rest"]:
        assert status == 200 and result["structuredContent"]["done"].startswith("r")
    for status, reply in outcome["mcp_json"]:
        assert status == 200 and "result" in reply and not reply["result"].get("isError")
    for messages in outcome["mcp_sse"]:
        assert messages[-1]["result"]["content"], messages
    for n, messages in enumerate(outcome["legacy"]):
        [reply] = [m for m in messages if m.get("id") == f"l{n}"]
        assert json.loads(reply["result"]["content"][0]["text"]) == {"done": f"l{n}"}

    # The audit file is complete: every answered request has its record, every call its line.
    audit = server.audit()
    by_request = {}
    for record in audit:
        by_request.setdefault(record.get("request_id"), []).append(record["event"])
    answered = [rid for rid, code in outcome["quick"].items() if code == 200]
    assert answered, "the load never got through"
    expected_ids = (
        answered
        + [f"rest-{n}" for n in range(8)]
        + [f"mcp-{n}" for n in range(4)]
        + [f"mcp-sse-{n}" for n in range(3)]
        + [f"legacy-post-{n}" for n in range(3)]
        + [f"legacy-{n}" for n in range(3)]
        + [f"get-{n}" for n in range(3)]
        + [f"ka-before-{n}" for n in range(3)]
    )
    missing = [rid for rid in expected_ids if "api_authentication" not in by_request.get(rid, [])]
    assert not missing, missing
    calls = [r for r in audit if r["event"] == "tool_call"]
    assert len(calls) == 8 + 4 + 3 + 3 and {r["status"] for r in calls} == {"success"}
    # Every stdout line parses; the stop was clean and drained; no key anywhere.
    records = server.records()
    events = [r["event"] for r in records]
    assert "shutdown_signal_received" in events
    [stopping] = [r for r in records if r["event"] == "server_stopping"]
    assert stopping["drained"] is True
    everything = "".join(server.lines) + open(server.audit_path).read()
    assert KEY not in everything and OTHER_KEY not in everything
    assert "unhandled_exception" not in everything and "Traceback" not in everything


async def overdue_scenario(server: ServerProcess) -> dict:
    http = AsyncHTTPClient(force_instance=True)
    call = asyncio.ensure_future(
        http.fetch(
            server.base_url + "/mcp/tool/call",
            method="POST",
            raise_error=False,
            request_timeout=30,
            headers={**AUTH, "Content-Type": "application/json", "X-Request-Id": "overdue"},
            body=json.dumps({"tool": "slow", "arguments": {"seconds": 30, "label": "overdue"}}),
        )
    )
    legacy = await SseReader.open(server.base_url + "/mcp/sse", headers=AUTH)
    _, endpoint = await legacy.next()
    await http.fetch(
        server.base_url + endpoint,
        method="POST",
        headers={**AUTH, "Content-Type": "application/json"},
        body=json.dumps(
            rpc(1, "tools/call", name="slow", arguments={"seconds": 30, "label": "overdue-sse"})
        ),
    )
    await asyncio.sleep(0.5)
    signalled = server.signal()
    try:
        code = (await call).code
    except (OSError, HTTPClientError):  # cut off, as it must be past the deadline
        code = "closed"
    closed = await legacy.closed(timeout=10)
    legacy.close()
    http.close()
    return {"signalled": signalled, "code": code, "legacy_closed": closed}


def test_calls_past_the_deadline_are_cancelled_audited_and_the_process_still_exits_0(tmp_path):
    server = ServerProcess(tmp_path, SHUTDOWN_TIMEOUT="1", SSE_KEEPALIVE="0.5")
    try:
        outcome = asyncio.run(overdue_scenario(server))
        code = server.wait(10)
    finally:
        server.kill()
    assert code == 0
    assert (
        time.monotonic() - outcome["signalled"] < 1 + 2 + 2
    )  # deadline + closing + start-up slack
    assert outcome["code"] == "closed" and outcome["legacy_closed"]  # cut off, not answered late
    calls = [r for r in server.audit() if r["event"] == "tool_call"]
    assert sorted(r["reason"] for r in calls) == ["cancelled", "cancelled"]
    [stopping] = [r for r in server.records() if r["event"] == "server_stopping"]
    assert stopping["drained"] is False


def test_the_real_entry_point_drains_streams_and_load_on_sigterm(tmp_path):
    # python -m aegis_tornado itself (no tools here), with streams open and load running.
    server = ServerProcess(
        tmp_path, module="aegis_tornado", SHUTDOWN_TIMEOUT="5", SSE_KEEPALIVE="0.5"
    )

    async def run() -> tuple[dict[str, int], float]:
        http = AsyncHTTPClient(force_instance=True, max_clients=32)
        streams = [
            await SseReader.open(
                server.base_url + path, headers={**AUTH, "Accept": "text/event-stream"}
            )
            for path in ("/mcp/sse", "/mcp") * 5
        ]
        answered: dict[str, int] = {}

        async def one(n: int):
            try:
                response = await http.fetch(
                    server.base_url + "/mcp",
                    method="POST",
                    headers={**AUTH, "Content-Type": "application/json", "X-Request-Id": f"q{n}"},
                    body=json.dumps(rpc(n, "ping")),
                    raise_error=False,
                    request_timeout=5,
                )
                answered[f"q{n}"] = response.code
            except (OSError, HTTPClientError):
                pass

        jobs = [asyncio.ensure_future(one(n)) for n in range(300)]
        while len(answered) < 20:
            await asyncio.sleep(0.01)
        signalled = server.signal()
        await asyncio.gather(*jobs)
        for stream in streams:
            assert await stream.closed(timeout=5)
            stream.close()
        http.close()
        return answered, signalled

    try:
        answered, signalled = asyncio.run(run())
        code = server.wait(10)
    finally:
        server.kill()
    assert code == 0 and time.monotonic() - signalled < 5
    audited = {r.get("request_id") for r in server.audit() if r["event"] == "api_authentication"}
    ok = [rid for rid, status in answered.items() if status == 200]
    assert ok and set(ok) <= audited, answered
    assert {status for status in answered.values()} <= {200, 503, 599}
