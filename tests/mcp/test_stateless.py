"""The stateless-era core, without HTTP: era selection, the admission order, header values."""

from __future__ import annotations

import pytest

from aegis_tornado.mcp import stateless
from aegis_tornado.mcp.jsonrpc import Message
from aegis_tornado.mcp.protocol import Discard, McpServer, ServerInfo

from ..support import demo_tools

META = {
    stateless.PROTOCOL_VERSION: "2026-07-28",
    stateless.CLIENT_CAPABILITIES: {},
}
ROUTING = stateless.Routing(protocol_version="2026-07-28", method="tools/list", name=None)


def message(method="tools/list", meta=META, **params) -> Message:
    return Message(kind="request", method=method, id=7, params={"_meta": dict(meta), **params})


@pytest.fixture
def server() -> McpServer:
    return McpServer(demo_tools(), ServerInfo("s", "S", "1", "use it"))


def test_era_selection():
    assert stateless.selects_stateless(message(), None)
    assert stateless.selects_stateless(None, "2026-07-28")
    assert stateless.selects_stateless(None, "garbage")
    assert not stateless.selects_stateless(None, "2025-06-18")
    assert not stateless.selects_stateless(None, None)
    legacy = Message(kind="request", method="initialize", id=1, params={"protocolVersion": "x"})
    assert not stateless.selects_stateless(legacy, "2025-11-25")


@pytest.mark.parametrize(
    "value, decoded",
    [
        ("echo", "echo"),
        ("  echo\t", "echo"),
        ("=?base64?w6ljaG8=?=", "écho"),
        ("=?base64?w6lj aG8=?=", None),
        ("=?base64?w6ljaG8?=", None),  # padding missing
        ("=?base64?w6ljaG9=?=", None),  # non-canonical trailing bits
        ("=?base64?/w==?=", None),  # not UTF-8
        ("=?base64?w6ljaG8=", "=?base64?w6ljaG8="),  # no closing marker: literal
        ("caf\u00e9", None),  # raw non-ASCII must be base64-encoded
    ],
)
def test_header_values(value, decoded):
    assert stateless.decode_header_value(value) == decoded


def test_admission_order(server):
    # envelope before headers, headers before version, version before method
    bad_meta = message(meta={stateless.CLIENT_CAPABILITIES: {}})
    with pytest.raises(stateless.Rejection) as caught:
        server.admit(bad_meta, stateless.Routing(None, None, None))
    assert caught.value.kind == "malformed" and caught.value.request_id == 7
    future = message("nope", meta={**META, stateless.PROTOCOL_VERSION: "2099-01-01"})
    with pytest.raises(stateless.Rejection) as caught:
        server.admit(future, stateless.Routing("2026-07-28", "nope", None))
    assert caught.value.kind == "mismatch"
    with pytest.raises(stateless.Rejection) as caught:
        server.admit(future, stateless.Routing("2099-01-01", "nope", None))
    assert caught.value.kind == "unsupported" and caught.value.data["requested"] == "2099-01-01"
    with pytest.raises(stateless.Rejection) as caught:
        server.admit(message("ping"), stateless.Routing("2026-07-28", "ping", None))
    assert caught.value.kind == "not_found" and caught.value.code == -32601
    assert server.admit(message(), ROUTING).envelope.version == "2026-07-28"
    # A transport with nothing beside the body skips the routing checks only.
    assert server.admit(message(), None).message.method == "tools/list"


@pytest.mark.gen_test
async def test_results_carry_result_type_server_info_and_hints(server):
    def observer(**_):
        return None

    reply = await server.handle_stateless(server.admit(message(), ROUTING), Discard(), observer)
    result = reply["result"]
    assert result["resultType"] == "complete"
    assert result["ttlMs"] == 300_000 and result["cacheScope"] == "public"
    assert result["_meta"][stateless.SERVER_INFO] == {"name": "s", "version": "1", "title": "S"}
    scoped = McpServer(demo_tools(), server.info, caller_scoped_tools=True)
    reply = await scoped.handle_stateless(scoped.admit(message(), ROUTING), Discard(), observer)
    assert reply["result"]["cacheScope"] == "private"


@pytest.mark.gen_test
async def test_a_long_call_reports_progress_while_it_runs(server, monkeypatch):
    from aegis_tornado.mcp import protocol

    monkeypatch.setattr(protocol, "PROGRESS_INTERVAL", 0.05)
    sent: list[dict] = []

    class Recording:
        async def send(self, message):
            sent.append(message)

    def observer(**_):
        return None

    call = message("tools/call", name="slow", arguments={"seconds": 0.3, "steps": 1})
    call.params["_meta"]["progressToken"] = "t"
    routing = stateless.Routing("2026-07-28", "tools/call", "slow")
    reply = await server.handle_stateless(server.admit(call, routing), Recording(), observer)
    assert reply["result"]["structuredContent"] == {"done": "slow"}
    progress = [m["params"] for m in sent if m["method"] == "notifications/progress"]
    heartbeats = [p for p in progress if "still running" in p.get("message", "")]
    assert len(heartbeats) >= 3
    assert [p["progress"] for p in progress] == sorted({p["progress"] for p in progress})
    # Without a progress token, nothing is sent at all.
    sent.clear()
    del call.params["_meta"]["progressToken"]
    await server.handle_stateless(server.admit(call, routing), Recording(), observer)
    assert [m for m in sent if m["method"] == "notifications/progress"] == []
