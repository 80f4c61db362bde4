"""The authentication gate, driven through the real server on a random port."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from tornado.httpclient import HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from aegis_tornado.auth.keys import parse_key
from aegis_tornado.web.app import make_app

from ..conftest import KEY, OTHER_KEY, UNKNOWN_KEY, body_json, with_settings

QUERY_KEY_PATHS = ("/mcp/tools", "/mcp/tool/call", "/mcp/sse")


def assert_unauthorized(response, *, reason_text: str) -> None:
    assert response.code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = body_json(response)
    assert body["status"] == 401
    assert reason_text in body["message"]


@pytest.mark.gen_test
async def test_valid_header_key_is_accepted_and_audited(api, logs):
    response = await api.request("/mcp/tools", headers={"User-Agent": "ChatGPT-User/1.0"})
    assert response.code == 200
    [record] = logs.audit("api_authentication")
    assert record["status"] == "success"
    assert record["key_hint"] == f"{KEY[:8]}...{KEY[-4:]}"
    assert record["key_name"] == "primary"
    assert record["user_agent"] == "ChatGPT-User/1.0"
    assert record["client_ip"] == "127.0.0.1"
    assert logs.audit("access_denied") == []


@pytest.mark.gen_test
async def test_missing_key_is_refused(api, logs):
    response = await api.request("/mcp/tools", key=None)
    assert_unauthorized(response, reason_text="Missing API key")
    [denied] = logs.audit("access_denied")
    assert denied["reason"] == "missing_api_key"
    assert denied["path"] == "/mcp/tools"
    [attempt] = logs.audit("api_authentication")
    assert attempt["status"] == "failure"


@pytest.mark.gen_test
async def test_malformed_authorization_header_is_refused(api, logs):
    for header in ("Basic dXNlcjpwYXNz", "Bearer", f"Token {KEY}", f"Bearer {KEY} extra"):
        response = await api.request("/mcp/tools", key=None, headers={"Authorization": header})
        assert_unauthorized(response, reason_text="Missing API key")


@pytest.mark.gen_test
async def test_invalid_key_is_refused(api, logs):
    response = await api.request("/mcp/tools", key=UNKNOWN_KEY)
    assert_unauthorized(response, reason_text="Invalid API key")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    [denied] = logs.audit("access_denied")
    assert denied["reason"] == "invalid_api_key"


@with_settings(max_auth_failures=100)
@pytest.mark.gen_test
async def test_keys_are_compared_exactly(api):
    one_char_off = KEY[:-1] + ("0" if KEY[-1] != "0" else "1")
    variants = [one_char_off, KEY.upper(), KEY[:-1], KEY + "0", f" {KEY}x"]
    for variant in variants:
        response = await api.request("/mcp/tools", key=variant)
        assert response.code == 401, variant
    # Whitespace around a query key is part of what was sent: not trimmed, not accepted.
    for raw in (f"%20{KEY}", f"{KEY}%0A", f"{KEY}%00"):
        response = await api.request(f"/mcp/tools?api_key={raw}", key=None)
        assert response.code == 401, raw


@pytest.mark.gen_test
async def test_every_configured_key_works_and_is_named(api, logs):
    assert (await api.request("/mcp/tools", key=KEY)).code == 200
    assert (await api.request("/mcp/tools", key=OTHER_KEY)).code == 200
    names = [r["key_name"] for r in logs.audit("api_authentication")]
    assert names == ["primary", None]


@pytest.mark.parametrize("path", QUERY_KEY_PATHS)
@pytest.mark.gen_test
async def test_query_key_is_accepted_on_the_three_paths(api, logs, base_url, path):
    if path == "/mcp/sse":
        chunks: list[bytes] = []
        done = asyncio.Event()

        def on_chunk(chunk: bytes) -> None:
            chunks.append(chunk)
            done.set()

        request = HTTPRequest(
            base_url + f"{path}?api_key={KEY}", streaming_callback=on_chunk, request_timeout=10
        )
        client = SimpleAsyncHTTPClient(force_instance=True)
        future = client.fetch(request, raise_error=False)
        await asyncio.wait_for(done.wait(), 5)
        assert b"event: endpoint" in b"".join(chunks)
        client.close()
        future.cancel() if not future.done() else None
    elif path == "/mcp/tool/call":
        response = await api.request(
            f"{path}?api_key={KEY}",
            "POST",
            key=None,
            json_body={"tool": "echo", "arguments": {"text": "x"}},
        )
        assert response.code == 200
    else:
        response = await api.request(f"{path}?api_key={KEY}", key=None)
        assert response.code == 200
    assert logs.audit("api_authentication")[0]["via"] == "query"


@pytest.mark.parametrize(
    "path", ["/mcp", "/mcp/", "/no/such/path", "/mcp/tools/extra", "/mcp/sse/../tools"]
)
@pytest.mark.gen_test
async def test_query_key_is_refused_elsewhere_even_when_valid(api, logs, path):
    response = await api.request(f"{path}?api_key={KEY}", key=None)
    assert_unauthorized(response, reason_text="only accepted on /mcp/tools")
    assert "Authorization: Bearer" in body_json(response)["message"]
    assert "/mcp/sse?api_key=" in body_json(response)["message"]  # the way for URL-only clients
    # Refused even alongside a valid header: the key must not travel in this URL at all.
    response = await api.request(f"{path}?api_key={KEY}", key=KEY)
    assert response.code == 401
    reasons = [r["reason"] for r in logs.audit("access_denied")]
    assert reasons == ["query_key_not_allowed", "query_key_not_allowed"]


@pytest.mark.gen_test
async def test_header_decides_when_both_are_sent(api):
    ok = await api.request(f"/mcp/tools?api_key={UNKNOWN_KEY}", key=KEY)
    assert ok.code == 200
    refused = await api.request(f"/mcp/tools?api_key={KEY}", key=UNKNOWN_KEY)
    assert refused.code == 401


@with_settings(
    api_keys=(parse_key("sha256:" + hashlib.sha256(KEY.encode()).hexdigest(), name="hashed"),)
)
@pytest.mark.gen_test
async def test_a_key_configured_by_digest_works(api, logs):
    assert (await api.request("/mcp/tools", key=KEY)).code == 200
    assert (await api.request("/mcp/tools", key=OTHER_KEY)).code == 401
    assert logs.audit("api_authentication")[0]["key_name"] == "hashed"


@pytest.mark.gen_test
async def test_unknown_paths_need_auth_then_answer_json_404(api):
    assert (await api.request("/definitely/not/here", key=None)).code == 401
    response = await api.request("/definitely/not/here", method="DELETE")
    assert response.code == 404
    assert body_json(response) == {
        "status": 404,
        "message": "No such endpoint: /definitely/not/here",
    }


@pytest.mark.gen_test
async def test_every_route_but_health_requires_a_key(api, ctx):
    app = make_app(ctx)
    paths = []
    for rule in app.wildcard_router.rules:
        handler = rule.target
        pattern = rule.matcher.regex.pattern.rstrip("$").replace("/?", "")
        if getattr(handler, "public", False):
            continue
        paths.append(pattern)
    assert set(paths) >= {"/mcp", "/mcp/sse", "/mcp/tools", "/mcp/tool/call"}
    for path in paths:
        for method in ("GET", "POST", "DELETE"):
            response = await api.request(path, method, key=None)
            assert response.code == 401, (method, path)
    assert (await api.request("/health", key=None)).code == 200


@pytest.mark.gen_test
async def test_health_is_public_and_not_audited(api, logs):
    response = await api.request("/health", key=None)
    assert body_json(response)["status"] == "ok"
    assert "state" not in body_json(response)  # one replica, no STATE_URL: as it always was
    head = await api.request("/health", "HEAD", key=None)
    assert head.code == 200
    assert logs.audit("api_authentication") == [] and logs.audit("access_denied") == []


@with_settings(auth_enabled=False)
@pytest.mark.gen_test
async def test_auth_disabled_lets_everyone_in(api, logs):
    assert (await api.request("/mcp/tools", key=None)).code == 200
    assert logs.audit("api_authentication") == []


@pytest.mark.gen_test
async def test_oversized_bodies_get_413_without_being_read(api, ctx):
    limit = ctx.settings.max_body_bytes
    response = await api.request(
        "/mcp/tool/call",
        "POST",
        body=b"x" * (limit + 1),
        headers={"Content-Type": "application/json"},
    )
    assert response.code == 413
    assert body_json(response)["message"].startswith("Request body too large")

    # A declared length far beyond the limit is refused from the headers alone: the client
    # never has to send the body.
    reader, writer = await asyncio.open_connection("127.0.0.1", int(api.base_url.rsplit(":", 1)[1]))
    writer.write(
        b"POST /mcp/tool/call HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + KEY.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.read(4096), 5)
    assert head.startswith(b"HTTP/1.1 413")
    writer.close()


@pytest.mark.gen_test
async def test_chunked_bodies_over_the_limit_get_413(api, ctx):
    limit = ctx.settings.max_body_bytes
    port = int(api.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /mcp/tool/call HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + KEY.encode()
        + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 65536
    try:
        for _ in range(limit // len(chunk) + 2):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
    except ConnectionError:
        pass
    head = await asyncio.wait_for(reader.read(4096), 5)
    assert head.startswith(b"HTTP/1.1 413")
    writer.close()


@pytest.mark.gen_test
async def test_refusals_leave_their_access_line_at_debug(api, logs):
    await api.request("/mcp/tools", key=UNKNOWN_KEY)
    await api.request("/mcp/tools")
    levels = {r["status"]: r["level"] for r in logs.stdout() if r["event"] == "http_request"}
    assert levels == {401: "debug", 200: "info"}
