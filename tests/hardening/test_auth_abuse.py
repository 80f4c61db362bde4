"""Abusing the gate: query keys where they are refused, spoofed client IPs, blocked IPs with
good keys, bursts of guesses, and session ids used by the wrong key or after they ended.

Complements tests/web/test_auth.py and test_rate_limit.py (one path or one header each):
here every route and method, every forwarding header, every transport, and concurrency.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json

import pytest
import requests

from aegis_tornado.web.app import make_app

from ..conftest import KEY, OTHER_KEY, UNKNOWN_KEY, body_json, with_settings
from ..sse_reader import SseReader
from ..support import demo_tools, rpc
from .conftest import LiveServer, live_settings

QUERY_KEY_ROUTES = {"/mcp/tools", "/mcp/tool/call", "/mcp/sse"}


def route_paths(ctx) -> list[str]:
    paths = []
    for rule in make_app(ctx).wildcard_router.rules:
        paths.append(rule.matcher.regex.pattern.rstrip("$").replace("/?", ""))
    return paths


# --- query keys -------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_query_keys_are_refused_on_every_other_route_and_method(api, ctx, logs):
    others = [p for p in route_paths(ctx) if p not in QUERY_KEY_ROUTES]
    others += [
        "/mcp/",
        "/MCP/TOOLS",
        "/mcp/tools/x",
        "/mcp/tool/call/x",
        "/mcp/sse/x",
        "/",
        "/mcp/sse/../tools",
        "/%6dcp/tools",
    ]
    assert "/mcp" in others and "/health" in others
    refused = 0
    for path in others:
        for method in ("GET", "POST", "DELETE"):
            for query in (
                f"api_key={KEY}",
                f"x=1&api_key={KEY}",
                f"api%5Fkey={KEY}",
                f"api_key={KEY}&api_key={KEY}",
                "api_key=",
            ):
                response = await api.request(f"{path}?{query}", method, key=None)
                assert response.code in (401, 405), (method, path, query, response.code)
                if response.code == 401:
                    refused += 1
                    assert "only accepted on" in body_json(response)["message"]
    reasons = {r["reason"] for r in logs.audit("access_denied")}
    assert reasons == {"query_key_not_allowed"} and refused


@pytest.mark.gen_test
async def test_a_key_in_a_form_body_is_not_a_key(api):
    response = await api.request(
        "/mcp/tool/call",
        "POST",
        key=None,
        body=f"api_key={KEY}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.code == 401 and "Missing API key" in body_json(response)["message"]


@with_settings(max_auth_failures=1000)
@pytest.mark.gen_test
async def test_whitespace_beyond_http_spacing_is_part_of_the_key(api):
    # HTTP strips spaces and tabs around a header value; anything else is compared exactly.
    assert (
        await api.request("/mcp/tools", key=None, headers={"Authorization": f"Bearer \t{KEY}\t "})
    ).code == 200
    for header in (
        f"Bearer\u00a0{KEY}",
        f"Bearer {KEY}\u00a0",
        f"Bearer {KEY}\u0085",
        f"Bearer\x0b{KEY}",
        f"Bearer {KEY}\x0c",
        f"Bearer {KEY[:32]} {KEY[32:]}",
    ):
        response = await api.request("/mcp/tools", key=None, headers={"Authorization": header})
        assert response.code in (400, 401), repr(header)  # 400: control characters, by Tornado


# --- client IP spoofing -----------------------------------------------------------------

FORWARDING_HEADERS = (
    "X-Forwarded-For",
    "X-Real-IP",
    "Forwarded",
    "X-Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "X-Originating-IP",
    "X-Cluster-Client-IP",
    "Client-IP",
    "X-Forwarded",
)


@with_settings(max_auth_failures=3)
@pytest.mark.gen_test
async def test_no_forwarding_header_moves_an_untrusted_peer(api, logs):
    for n in range(3):
        spoof = {
            name: f"198.51.100.{n}" if name != "Forwarded" else f"for=198.51.100.{n}"
            for name in FORWARDING_HEADERS
        }
        assert (await api.request("/mcp/tools", key=UNKNOWN_KEY, headers=spoof)).code == 401
    spoof = {name: "203.0.113.9" for name in FORWARDING_HEADERS}
    assert (await api.request("/mcp/tools", key=KEY, headers=spoof)).code == 429
    assert {r["client_ip"] for r in logs.audit() if "client_ip" in r} == {"127.0.0.1"}


@with_settings(max_auth_failures=100, trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),))
@pytest.mark.gen_test
async def test_garbage_forwarded_headers_from_a_trusted_proxy_fall_back_to_the_peer(api, logs):
    hostile = [
        "",
        ",",
        "unknown",
        "garbage, 127.0.0.1",
        "::1%eth0",
        "1.2.3.4.5",
        "[::1]:x",
        "999.1.1.1",
        "a" * 5000,
        ", ".join(["10.0.0.1"] * 2000),
        "127.0.0.1, 127.0.0.2",
        "\u00e9",
        "0x7f.1",
        "2001:db8::1]:80",
    ]
    for value in hostile:
        response = await api.request(
            "/mcp/tools", headers={"X-Forwarded-For": value, "X-Real-IP": value}
        )
        assert response.code in (200, 431), (value[:40], response.code)
    for record in logs.audit("api_authentication"):
        ipaddress.ip_address(record["client_ip"])  # always an address, never the header text


# --- blocked IPs ------------------------------------------------------------------------


@with_settings(max_auth_failures=2, auth_failure_window=60)
@pytest.mark.gen_test
async def test_a_blocked_ip_is_refused_on_every_transport_even_with_a_valid_key(api, base_url):
    for _ in range(2):
        await api.request("/mcp/tools", key=UNKNOWN_KEY)
    attempts = [
        await api.request("/mcp/tools"),
        await api.request(f"/mcp/tools?api_key={KEY}", key=None),
        await api.mcp(rpc("ping")),
        await api.request("/mcp", headers={"Accept": "text/event-stream"}),
        await api.request("/mcp", "DELETE", headers={"Mcp-Session-Id": "x.y.z"}),
        await api.request(
            "/mcp/tool/call", "POST", json_body={"tool": "echo", "arguments": {"text": "x"}}
        ),
        await api.request("/mcp/sse?session_id=" + "0" * 32, "POST", json_body=rpc("ping")),
        await api.request("/elsewhere", key=OTHER_KEY),
    ]
    for response in attempts:
        assert response.code == 429 and int(response.headers["Retry-After"]) >= 1
    stream = await SseReader.open(base_url + f"/mcp/sse?api_key={KEY}")
    assert stream.code == 429
    stream.close()
    assert (await api.request("/health", key=None)).code == 200


@with_settings(max_auth_failures=5, auth_failure_window=60)
@pytest.mark.gen_test
async def test_a_burst_of_concurrent_guesses_gets_exactly_the_allowed_failures(api, logs):
    guesses = [api.request("/mcp/tools", key=f"{n:064x}") for n in range(40)]
    codes = [r.code for r in await asyncio.gather(*guesses)]
    assert codes.count(401) == 5 and codes.count(429) == 35
    assert len(logs.audit("auth_rate_limit_exceeded")) == 1


@with_settings(
    max_auth_failures=3,
    auth_failure_window=60,
    trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
)
@pytest.mark.gen_test
async def test_many_addresses_each_get_their_own_allowance(api, logs):
    # A spray from many (proxied) addresses: each is limited on its own, none blocks another.
    async def guess(ip: str):
        return await api.request("/mcp/tools", key=UNKNOWN_KEY, headers={"X-Forwarded-For": ip})

    codes = [
        r.code for r in await asyncio.gather(*(guess(f"203.0.113.{n % 20}") for n in range(100)))
    ]
    assert codes.count(401) == 20 * 3 and codes.count(429) == 100 - 60
    good = await api.request("/mcp/tools", headers={"X-Forwarded-For": "198.51.100.1"})
    assert good.code == 200
    assert len(logs.audit("auth_rate_limit_exceeded")) == 20


@with_settings(
    max_auth_failures=5,
    auth_failure_window=300,
    auth_tracked_ips=100,
    trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
)
@pytest.mark.gen_test
async def test_a_spray_of_other_addresses_does_not_evict_a_blocked_one(api):
    # The red-team's figures: AUTH_TRACKED_IPS=100, 100 other addresses failing once each
    # used to free the blocked address, whose valid key then got 200.
    blocked = {"X-Forwarded-For": "203.0.113.66"}
    for _ in range(5):
        await api.request("/mcp/tools", key=UNKNOWN_KEY, headers=blocked)
    for n in range(100):
        spray = {"X-Forwarded-For": f"198.51.{n // 250}.{n % 250}"}
        assert (await api.request("/mcp/tools", key=UNKNOWN_KEY, headers=spray)).code == 401
    assert (await api.request("/mcp/tools", key=KEY, headers=blocked)).code == 429


@with_settings(
    max_auth_failures=5,
    client_ip_header="X-Real-IP",
    trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
)
@pytest.mark.gen_test
async def test_a_rotating_x_forwarded_for_cannot_escape_when_the_proxy_sets_x_real_ip(api):
    # The red-team's figures: a fixed X-Real-IP (set by the proxy) and a different
    # X-Forwarded-For each time: 12 bad keys got 12 x 401, never 429.
    codes = []
    for n in range(12):
        headers = {"X-Real-IP": "203.0.113.50", "X-Forwarded-For": f"198.51.100.{n}"}
        codes.append((await api.request("/mcp/tools", key=UNKNOWN_KEY, headers=headers)).code)
    assert codes == [401] * 5 + [429] * 7


@with_settings(max_auth_failures=3, trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
@pytest.mark.gen_test
async def test_ipv6_guesses_from_one_network_are_counted_together(api):
    for n in range(3):
        headers = {"X-Forwarded-For": f"2001:db8:7:7::{n + 1:x}"}
        assert (await api.request("/mcp/tools", key=UNKNOWN_KEY, headers=headers)).code == 401
    fresh = {"X-Forwarded-For": "2001:db8:7:7:abcd::1"}
    assert (await api.request("/mcp/tools", key=KEY, headers=fresh)).code == 429


# --- sessions used by the wrong key, or after they ended --------------------------------


async def initialize(api, key=KEY) -> str:
    response = await api.mcp(
        rpc("initialize", protocolVersion="2025-06-18", capabilities={}), key=key
    )
    return response.headers["Mcp-Session-Id"]


@pytest.mark.gen_test
async def test_another_keys_session_cannot_be_used_on_any_verb(api, base_url, ctx):
    session_id = await initialize(api)
    headers = {"Mcp-Session-Id": session_id}
    assert (await api.mcp(rpc("ping"), headers=headers, key=OTHER_KEY)).code == 404
    stream = await api.request(
        "/mcp", key=OTHER_KEY, headers={**headers, "Accept": "text/event-stream"}
    )
    assert stream.code == 404
    assert (await api.request("/mcp", "DELETE", headers=headers, key=OTHER_KEY)).code == 404
    assert (await api.mcp(rpc("ping"), headers=headers)).code == 200  # still the owner's


@pytest.mark.gen_test
async def test_another_keys_legacy_session_can_neither_be_posted_to_nor_read(api, base_url):
    owner = await SseReader.open(base_url + "/mcp/sse", headers={"Authorization": f"Bearer {KEY}"})
    _, endpoint = await owner.next()
    intruder = await api.request(
        endpoint,
        "POST",
        key=OTHER_KEY,
        json_body=rpc("tools/call", 99, name="echo", arguments={"text": "injected"}),
    )
    assert intruder.code == 404
    await api.request(endpoint, "POST", json_body=rpc("ping", "mine"))
    assert (await owner.next_json())["id"] == "mine"  # the intruder's call never ran here
    owner.close()


@with_settings(session_ttl=60)
@pytest.mark.gen_test
async def test_expired_session_ids_are_refused_and_not_rebuilt(api, ctx):
    session_id = await initialize(api)
    evicted_id = await initialize(api)
    ctx.sessions._sessions.pop(evicted_id)  # as if evicted: rebuilt from its signature...
    assert (await api.mcp(rpc("ping"), headers={"Mcp-Session-Id": evicted_id})).code == 200
    clock = ctx.sessions._clock
    ctx.sessions._clock = lambda: clock() + 61  # ... until both are older than the TTL
    ctx.sessions._sessions.pop(evicted_id)
    for stale in (session_id, evicted_id):
        response = await api.mcp(rpc("ping"), headers={"Mcp-Session-Id": stale})
        assert response.code == 404, stale
    assert len(ctx.sessions) == 0


@pytest.mark.gen_test
async def test_an_ended_session_stays_ended_even_when_evicted_from_memory(api, ctx):
    session_id = await initialize(api)
    assert (await api.request("/mcp", "DELETE", headers={"Mcp-Session-Id": session_id})).code == 204
    for _ in range(2):
        assert (await api.mcp(rpc("ping"), headers={"Mcp-Session-Id": session_id})).code == 404
    assert (await api.request("/mcp", "DELETE", headers={"Mcp-Session-Id": session_id})).code == 404


@pytest.mark.gen_test
async def test_ids_signed_for_another_key_are_forgeries(api, ctx):
    # Even holding a valid id for key A, swapping its MAC part with one from key B fails.
    mine, theirs = await initialize(api), await initialize(api, key=OTHER_KEY)
    issued, nonce, _ = mine.split(".")
    spliced = ".".join([issued, nonce, theirs.split(".")[2]])
    for candidate in (spliced, theirs):
        assert (await api.mcp(rpc("ping"), headers={"Mcp-Session-Id": candidate})).code == 404
    assert (
        json.loads((await api.mcp(rpc("ping"), headers={"Mcp-Session-Id": mine})).body)["id"] == 1
    )


# --- refusals keep keep-alive connections usable ----------------------------------------


def test_refusals_do_not_reset_a_keep_alive_client(tmp_path):
    # The red-team saw ECONNRESET about one time in five on a keep-alive connection reused
    # after a refusal: the gate answered with the request body unread, and closed.
    server = LiveServer(
        live_settings(
            tmp_path,
            max_auth_failures=3,
            trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
        ),
        demo_tools(),
    )
    good = {"Authorization": f"Bearer {KEY}", "X-Forwarded-For": "198.51.100.1"}
    attacker = {"Authorization": f"Bearer {UNKNOWN_KEY}", "X-Forwarded-For": "203.0.113.9"}
    call = {"tool": "echo", "arguments": {"text": "x" * 2000}}
    refusals = [
        ("POST", "/mcp/tool/call", attacker, call),  # 401, then 429 once blocked
        ("GET", "/mcp/tools", {"X-Forwarded-For": "198.51.100.2"}, None),  # 401, no key
        ("POST", "/mcp", {**good, "Origin": "https://evil.example"}, {"jsonrpc": "2.0"}),  # 403
        ("POST", f"/health?api_key={KEY}", {"X-Forwarded-For": "198.51.100.3"}, call),  # 401
    ]
    errors: list[str] = []
    statuses: dict[int, int] = {}
    try:
        with requests.Session() as client:
            for n in range(1000):
                if n % 2:
                    method, path, headers, body = "POST", "/mcp/tool/call", good, call
                else:
                    method, path, headers, body = refusals[(n // 2) % len(refusals)]
                try:
                    response = client.request(
                        method,
                        f"http://127.0.0.1:{server.port}{path}",
                        json=body,
                        headers=headers,
                        timeout=10,
                    )
                except requests.ConnectionError as error:
                    errors.append(f"{n}: {type(error).__name__}")
                    continue
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert errors == []
        assert statuses[200] == 500 and statuses[429] > 100 and statuses[403] == 125
        assert server.drained()
    finally:
        server.stop()
