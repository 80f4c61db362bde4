"""Property-based fuzzing of every transport with hostile bodies and headers.

Whatever arrives, the answer is a well-formed JSON error (or a result), with a status the
transport documents, never a 5xx or a traceback; replies on event streams stay well-formed; and
the server keeps serving (checked after each test, and by ``live_server`` when the module ends).
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ..sse_reader import SseReader
from ..support import initialize_request
from .checks import (
    assert_error_body,
    assert_jsonrpc_message,
    assert_no_leak,
    check_mcp_reply,
    check_rest_reply,
)
from .conftest import FUZZ, KEY, fuzz_registry, strict_json
from .strategies import (
    VERSIONS,
    json_values,
    mcp_payloads,
    raw_bodies,
    scalars,
    texts,
    tool_arguments,
)

REGISTRY = fuzz_registry()
TOOL_NAMES = [tool.name for tool in REGISTRY]
ARGUMENTS = st.one_of([tool_arguments(tool.input_schema) for tool in REGISTRY])
PAYLOADS = mcp_payloads(TOOL_NAMES, ARGUMENTS)

CONTENT_TYPES = st.sampled_from(
    ["application/json"] * 8
    + [
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "text/plain",
        "application/jsonx",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
        None,
    ]
)
ACCEPTS = st.sampled_from(
    ["application/json, text/event-stream"] * 3
    + ["application/json", "text/event-stream", "*/*", "", None]
)
PROTOCOL_VERSIONS = st.sampled_from([None] * 4 + list(VERSIONS) + [" 2025-06-18", "\u00e9"])
SESSIONS = st.sampled_from(["none", "none", "valid", "forged", "junk", "non-ascii"])


def headers_for(content_type, accept, version, session, session_id) -> dict[str, str]:
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    if version is not None:
        headers["MCP-Protocol-Version"] = version
    session_values = {
        "valid": session_id,
        "forged": session_id[:-3] + "AAA",
        "junk": "x.y.z",
        "non-ascii": "1.\u00e9\u00e9.\u00ff",
    }
    if session in session_values:
        headers["Mcp-Session-Id"] = session_values[session]
    return headers


@pytest.fixture(scope="module")
def session_id(live_server) -> str:
    reply = live_server.request(
        "POST",
        "/mcp",
        json.dumps(initialize_request("fuzz")).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    assert reply.status == 200
    return reply.headers["mcp-session-id"]


def ping(live_server):
    return live_server.request(
        "POST",
        "/mcp",
        b'{"jsonrpc":"2.0","id":"alive","method":"ping"}',
        headers={"Content-Type": "application/json"},
    )


def still_serving(live_server) -> None:
    reply = ping(live_server)
    assert reply.status == 200 and reply.json()["id"] == "alive"


# --- POST /mcp ----------------------------------------------------------------------------


@FUZZ
@given(
    body=raw_bodies(PAYLOADS),
    content_type=CONTENT_TYPES,
    accept=ACCEPTS,
    version=PROTOCOL_VERSIONS,
    session=SESSIONS,
)
def test_post_mcp_answers_any_body_well(
    live_server, session_id, body, content_type, accept, version, session
):
    headers = headers_for(content_type, accept, version, session, session_id)
    reply = live_server.request("POST", "/mcp", body, headers=headers)
    check_mcp_reply(reply)
    if (
        content_type is not None
        and content_type.split(";")[0].strip().lower() != "application/json"
    ):
        assert reply.status == 415


@FUZZ
@given(message=PAYLOADS, version=PROTOCOL_VERSIONS, session=SESSIONS)
def test_post_mcp_answers_any_message_well(live_server, session_id, message, version, session):
    # Well-encoded JSON, so the fuzzer spends its budget past the parser.
    headers = headers_for(
        "application/json", "application/json, text/event-stream", version, session, session_id
    )
    reply = live_server.request("POST", "/mcp", json.dumps(message).encode(), headers=headers)
    check_mcp_reply(reply)
    request_id = message.get("id") if isinstance(message, dict) else None
    has_id = isinstance(request_id, str) or (
        isinstance(request_id, int) and not isinstance(request_id, bool)
    )
    if has_id and reply.status == 200 and reply.content_type.startswith("application/json"):
        # A single message with a usable id is answered under that id, whatever else is wrong.
        assert reply.json()["id"] == request_id, (message, reply.body[:300])


def test_mcp_still_serves_after_fuzzing(live_server):
    reply = ping(live_server)
    assert reply.status == 200
    assert reply.json() == {"jsonrpc": "2.0", "id": "alive", "result": {}}
    # Not just pings: a tool call still runs and answers with its result.
    call = live_server.request(
        "POST",
        "/mcp",
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": "after",
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "still here"}},
            }
        ).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    assert call.status == 200, call.body[:300]
    result = call.json()["result"]
    # No session: the 2025-03-26 default, whose results are text only.
    assert json.loads(result["content"][0]["text"]) == {"text": "still here"}
    assert "isError" not in result


# --- POST /mcp/tool/call ------------------------------------------------------------------

REST_PAYLOADS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "tool": st.sampled_from(TOOL_NAMES) | texts | scalars,
            "name": st.sampled_from(TOOL_NAMES) | texts | scalars,
            "arguments": ARGUMENTS | json_values(6),
            "extra": json_values(4),
        },
    ),
    json_values(8),
)


@FUZZ
@given(body=raw_bodies(REST_PAYLOADS), content_type=CONTENT_TYPES, via_query=st.booleans())
def test_rest_tool_call_answers_any_body_well(live_server, body, content_type, via_query):
    headers = {} if content_type is None else {"Content-Type": content_type}
    path, key = ("/mcp/tool/call?api_key=" + KEY, None) if via_query else ("/mcp/tool/call", KEY)
    reply = live_server.request("POST", path, body, headers=headers, key=key)
    check_rest_reply(reply)
    if (
        content_type is not None
        and content_type.split(";")[0].strip().lower() != "application/json"
    ):
        assert reply.status == 415


def test_rest_still_serves_after_fuzzing(live_server):
    reply = live_server.request(
        "POST",
        "/mcp/tool/call",
        b'{"tool":"echo","arguments":{"text":"ok"}}',
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 200 and reply.json()["structuredContent"] == {"text": "ok"}


# --- the legacy transport: POST /mcp/sse?session_id=..., replies on the stream ------------


class LegacyStream:
    """An open GET /mcp/sse stream on the live server's loop, read from the test's thread."""

    def __init__(self, live_server):
        self.server = live_server
        self.reader = live_server.run(
            lambda: SseReader.open(
                f"http://127.0.0.1:{live_server.port}/mcp/sse",
                headers={"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"},
            )
        )
        event, self.endpoint = self.next()
        assert event == "endpoint"
        self._probe = itertools.count()

    def next(self, timeout: float = 10) -> tuple[str, str]:
        return self.server.run(lambda: self.reader.next(timeout), timeout + 5)

    def post(self, body: bytes, content_type: str | None = "application/json"):
        headers = {} if content_type is None else {"Content-Type": content_type}
        return self.server.request("POST", self.endpoint, body, headers=headers)

    def drain_until_probe(self) -> None:
        """Send a ping and read the stream up to its reply: everything before it must be a
        well-formed message, and the stream must stay open."""
        probe = f"probe-{next(self._probe)}"
        reply = self.post(json.dumps({"jsonrpc": "2.0", "id": probe, "method": "ping"}).encode())
        assert reply.status == 202, reply
        while True:
            event, data = self.next()
            assert event == "message", (event, data)
            message = strict_json(data)
            for item in message if isinstance(message, list) else [message]:
                assert_jsonrpc_message(item, allow_notifications=True)
                if isinstance(item, dict) and item.get("id") == probe:
                    assert item["result"] == {}
                    return

    def close(self) -> None:
        self.server.loop.call_soon_threadsafe(self.reader.close)


@pytest.fixture(scope="module")
def legacy(live_server):
    stream = LegacyStream(live_server)
    yield stream
    stream.close()


@FUZZ
@given(body=raw_bodies(PAYLOADS), content_type=CONTENT_TYPES)
def test_legacy_sse_answers_any_body_well(live_server, legacy, body, content_type):
    reply = legacy.post(body, content_type)
    assert_no_leak(reply.body)
    assert reply.status in (202, 400, 413, 415), (reply.status, reply.body[:300])
    if reply.status == 202:
        assert reply.body == b"Accepted"
    else:
        assert_error_body(reply)
    legacy.drain_until_probe()


def test_legacy_stream_survives_fuzzing(live_server, legacy):
    # The stream that took every fuzzed body still carries a tool call's reply.
    body = {
        "jsonrpc": "2.0",
        "id": "after-fuzz",
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "still here"}},
    }
    assert legacy.post(json.dumps(body).encode()).status == 202
    while True:
        event, data = legacy.next()
        assert event == "message", (event, data)
        message = strict_json(data)
        if isinstance(message, dict) and message.get("id") == "after-fuzz":
            break
    assert json.loads(message["result"]["content"][0]["text"]) == {"text": "still here"}
    assert ping(live_server).json()["result"] == {}
