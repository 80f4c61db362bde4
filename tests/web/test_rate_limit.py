"""Failed-authentication rate limiting through the running server."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from ..conftest import KEY, UNKNOWN_KEY, body_json, with_settings


@with_settings(max_auth_failures=3, auth_failure_window=1.0)
@pytest.mark.gen_test(timeout=15)
async def test_block_after_n_failures_then_expiry(api, logs):
    for _ in range(3):
        assert (await api.request("/mcp/tools", key=UNKNOWN_KEY)).code == 401
    blocked = await api.request("/mcp/tools", key=UNKNOWN_KEY)
    assert blocked.code == 429
    assert body_json(blocked)["message"].startswith("Too many failed authentication attempts")
    assert int(blocked.headers["Retry-After"]) >= 1
    # A valid key from a blocked IP is refused too, or the block would not stop guessing.
    assert (await api.request("/mcp/tools", key=KEY)).code == 429
    assert (await api.request("/mcp/tools", key=None)).code == 429

    await asyncio.sleep(1.1)  # the oldest counted failure leaves the window
    assert (await api.request("/mcp/tools", key=KEY)).code == 200

    [exceeded] = logs.audit("auth_rate_limit_exceeded")
    assert exceeded["severity"] == "high"
    assert exceeded["client_ip"] == "127.0.0.1"
    assert exceeded["failures"] == 3 and exceeded["window"] == 1
    reasons = [r["reason"] for r in logs.audit("access_denied")]
    assert reasons == ["invalid_api_key"] * 3 + ["rate_limited"] * 3


@with_settings(max_auth_failures=3, auth_failure_window=60.0)
@pytest.mark.gen_test
async def test_success_neither_counts_nor_resets(api):
    for _ in range(2):
        assert (await api.request("/mcp/tools", key=UNKNOWN_KEY)).code == 401
    for _ in range(5):
        assert (await api.request("/mcp/tools", key=KEY)).code == 200
    assert (await api.request("/mcp/tools", key=UNKNOWN_KEY)).code == 401
    assert (await api.request("/mcp/tools", key=KEY)).code == 429


@with_settings(max_auth_failures=2)
@pytest.mark.gen_test
async def test_clients_that_never_fail_are_never_limited(api):
    for _ in range(20):
        assert (await api.request("/mcp/tools", key=KEY)).code == 200


@with_settings(max_auth_failures=2)
@pytest.mark.gen_test
async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(api, logs):
    # A guesser rotating X-Forwarded-For is still one IP: the socket peer.
    for n in range(2):
        response = await api.request(
            "/mcp/tools",
            key=UNKNOWN_KEY,
            headers={"X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": f"198.51.100.{n}"},
        )
        assert response.code == 401
    spoofed = await api.request("/mcp/tools", key=KEY, headers={"X-Forwarded-For": "198.51.100.77"})
    assert spoofed.code == 429
    assert {r["client_ip"] for r in logs.audit("access_denied")} == {"127.0.0.1"}


@with_settings(max_auth_failures=2, trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
@pytest.mark.gen_test
async def test_trusted_proxy_forwarded_client_ip_is_limited_on_its_own(api, logs):
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    for _ in range(2):
        assert (await api.request("/mcp/tools", key=UNKNOWN_KEY, headers=attacker)).code == 401
    assert (await api.request("/mcp/tools", key=KEY, headers=attacker)).code == 429
    # Another client behind the same proxy is unaffected.
    other = {"X-Forwarded-For": "203.0.113.7"}
    assert (await api.request("/mcp/tools", key=KEY, headers=other)).code == 200
    # The client cannot prepend its own choice: only the hop the proxy added counts.
    sneaky = {"X-Forwarded-For": "192.0.2.1, 203.0.113.66"}
    assert (await api.request("/mcp/tools", key=KEY, headers=sneaky)).code == 429
    assert logs.audit("auth_rate_limit_exceeded")[0]["client_ip"] == "203.0.113.66"
    # X-Real-IP is not the header named by CLIENT_IP_HEADER: the request is the proxy's own.
    assert (
        await api.request("/mcp/tools", key=KEY, headers={"X-Real-IP": "203.0.113.66"})
    ).code == 200
