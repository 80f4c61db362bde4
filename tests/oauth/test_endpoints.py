"""The OAuth endpoints by raw HTTP: metadata, registration policy, authorization failures,
code exchange, refresh rotation and reuse detection, revocation, browser binding, and API keys
beside OAuth (reference matrix cases 4, 6, 7, 8, 9, 10, 11, 12, 13, 15-DCR, 16)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import urlencode

import httpx2
import pytest

from ..conftest import KEY
from ..support import initialize_request
from .conftest import REDIRECT, Browser

# The same flows on both stores: the SQLite file (one replica) and Redis (STATE_URL).
BOTH_STORES = True

INIT = initialize_request()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def register(http: httpx2.AsyncClient, base: str, redirect: str = REDIRECT, **extra):
    body = {
        "client_name": "raw",
        "redirect_uris": [redirect],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        **extra,
    }
    return await http.post(f"{base}/oauth/register", json=body)


def authorize_url(base: str, client_id: str, challenge: str, **overrides) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "state": "client-state-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": f"{base}/mcp",
        "scope": "gitea:read",
        **overrides,
    }
    return f"{base}/oauth/authorize?" + urlencode({k: v for k, v in query.items() if v is not None})


async def authorization(base: str, client_id: str, challenge: str, login: str = "alice") -> dict:
    """A browser's way through consent and Gitea's sign-in for ``authorize_url``: the query of
    the redirect back to the client (code, state, iss)."""
    browser = Browser(login)
    try:
        await browser.visit(authorize_url(base, client_id, challenge))
    finally:
        await browser.aclose()
    return browser.result


async def exchange_code(
    http: httpx2.AsyncClient, base: str, client_id: str, code: str, verifier: str, **extra
) -> httpx2.Response:
    """The client's token request for an authorization code."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": client_id,
        "code_verifier": verifier,
        **extra,
    }
    return await http.post(f"{base}/oauth/token", data=form)


async def refresh(
    http: httpx2.AsyncClient, base: str, refresh_token: str, client_id: str
) -> httpx2.Response:
    """The client's token request with a refresh token."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    return await http.post(f"{base}/oauth/token", data=form)


async def sign_in(base: str, login: str = "alice") -> dict:
    """DCR + the browser flow + the code exchange: the token response, plus the client id."""
    async with httpx2.AsyncClient(timeout=20) as http:
        client_id = (await register(http, base)).json()["client_id"]
        verifier, challenge = pkce()
        result = await authorization(base, client_id, challenge, login)
        assert result and result["iss"] == base
        assert result["state"] == "client-state-1"
        reply = await exchange_code(
            http, base, client_id, result["code"], verifier, resource=f"{base}/mcp"
        )
        assert reply.status_code == 200, reply.text
        assert reply.headers["cache-control"] == "no-store"
        return {
            **reply.json(),
            "client_id": client_id,
            "code": result["code"],
            "verifier": verifier,
        }


async def post_mcp(
    http: httpx2.AsyncClient,
    base: str,
    token: str,
    message: dict,
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    """A JSON-RPC message POSTed to /mcp with an OAuth access token."""
    return await http.post(
        f"{base}/mcp",
        json=message,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            **(headers or {}),
        },
    )


async def list_repositories(http: httpx2.AsyncClient, base: str, token: str) -> httpx2.Response:
    """The REST tool call (/mcp/tool/call) every user can make, with an OAuth access token."""
    return await http.post(
        f"{base}/mcp/tool/call",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        json={"tool": "list_repositories", "arguments": {}},
    )


async def mcp_status(base: str, token: str) -> int:
    async with httpx2.AsyncClient(timeout=20) as http:
        return (await post_mcp(http, base, token, INIT)).status_code


@pytest.mark.gen_test(timeout=30)
async def test_metadata_documents(mcp_base, app, http_server):
    async with httpx2.AsyncClient() as http:
        prm = [
            (await http.get(f"{mcp_base}{p}", headers={"MCP-Protocol-Version": "2026-07-28"}))
            for p in (
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-protected-resource",
            )
        ]
        asm = (await http.get(f"{mcp_base}/.well-known/oauth-authorization-server")).json()
        unauth = await http.post(f"{mcp_base}/mcp", json=INIT)
    assert all(r.status_code == 200 for r in prm) and prm[0].json() == prm[1].json()
    doc = prm[0].json()
    assert doc["resource"] == f"{mcp_base}/mcp"
    assert doc["authorization_servers"] == [asm["issuer"]] == [mcp_base]
    assert asm["code_challenge_methods_supported"] == ["S256"]
    assert asm["authorization_response_iss_parameter_supported"] is True
    assert not {"openid", "profile", "email", "offline_access"} & set(asm["scopes_supported"])
    assert unauth.status_code == 401
    challenge = unauth.headers["www-authenticate"]
    assert f'resource_metadata="{mcp_base}/.well-known/oauth-protected-resource/mcp"' in challenge


@pytest.mark.gen_test(timeout=30)
async def test_registration_trust_policy(mcp_base, app, http_server):
    async with httpx2.AsyncClient() as http:
        chatgpt = await register(http, mcp_base, "https://chatgpt.com/connector/oauth/abc123")
        legacy = await register(
            http, mcp_base, "https://chatgpt.com/connector_platform_oauth_redirect"
        )
        claude = await register(
            http, mcp_base, "https://claude.ai/api/mcp/auth_callback", client_name="Claude"
        )
        evil = await register(http, mcp_base, "https://evil.example/callback")
        lookalike = await register(
            http, mcp_base, "https://chatgpt.com.evil.example/connector/oauth/x"
        )
        secret = await register(http, mcp_base, token_endpoint_auth_method="client_secret_post")
    for reply in (chatgpt, legacy, claude):
        assert reply.status_code == 201, reply.text
        assert reply.json()["token_endpoint_auth_method"] == "none"
        assert "client_secret" not in reply.json()
    assert claude.json()["client_name"] == "Claude"
    for reply in (evil, lookalike):
        assert reply.status_code == 400 and reply.json()["error"] == "invalid_redirect_uri"
    assert secret.status_code == 400


@pytest.mark.gen_test(timeout=60)
async def test_authorization_request_failures(mcp_base, app, http_server):
    async with httpx2.AsyncClient(timeout=20) as http:
        client_id = (await register(http, mcp_base)).json()["client_id"]
        _, challenge = pkce()
        # Unregistered redirect URI: an error page, never a redirect (open redirect).
        bad = await http.get(
            authorize_url(mcp_base, client_id, challenge, redirect_uri="http://evil.example/cb")
        )
        assert bad.status_code == 400 and "location" not in bad.headers
        unknown = await http.get(authorize_url(mcp_base, "dcr_nobody", challenge))
        assert unknown.status_code == 400 and "location" not in unknown.headers
        # Loopback IP: another port is the same redirect URI (RFC 8252).
        other_port = await http.get(
            authorize_url(
                mcp_base, client_id, challenge, redirect_uri="http://127.0.0.1:40001/callback"
            )
        )
        assert other_port.status_code == 200
        # Audience: another resource is refused back at the client.
        evil = await http.get(
            authorize_url(mcp_base, client_id, challenge, resource="https://evil")
        )
        assert evil.status_code == 302
        assert "error=invalid_target" in evil.headers["location"]
        assert evil.headers["location"].startswith(REDIRECT)
        # PKCE: required, and S256 only.
        missing = await http.get(
            authorize_url(mcp_base, client_id, None, code_challenge_method=None)
        )
        plain = await http.get(
            authorize_url(mcp_base, client_id, "x" * 50, code_challenge_method="plain")
        )
        for reply in (missing, plain):
            assert reply.status_code == 302 and "error=invalid_request" in reply.headers["location"]
        # The consent page names the client and cannot be framed.
        page = await http.get(authorize_url(mcp_base, client_id, challenge))
        assert page.status_code == 200 and "raw" in page.text and "127.0.0.1" in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        handle = page.text.split('name="handle" value="')[1].split('"')[0]
    # The consent handle is bound to the browser that got the page: another browser's POST fails.
    async with httpx2.AsyncClient(timeout=20) as stranger:
        stolen = await stranger.post(
            f"{mcp_base}/oauth/consent", data={"handle": handle, "action": "allow"}
        )
    assert stolen.status_code == 400 and "location" not in stolen.headers


@pytest.mark.gen_test(timeout=60)
async def test_consent_denied_and_single_use_handle(mcp_base, app, http_server):
    async with httpx2.AsyncClient(timeout=20) as http:
        client_id = (await register(http, mcp_base)).json()["client_id"]
    _, challenge = pkce()
    browser = Browser("alice", consent="deny")
    try:
        await browser.visit(authorize_url(mcp_base, client_id, challenge))
        assert browser.result["error"] == "access_denied"
        assert browser.result["state"] == "client-state-1" and browser.result["iss"] == mcp_base
        # The same browser replays its consent form: the handle is gone.
        page_url = authorize_url(mcp_base, client_id, challenge)
        page = await browser.http.get(page_url)
        handle = page.text.split('name="handle" value="')[1].split('"')[0]
        first = await browser.http.post(
            f"{mcp_base}/oauth/consent", data={"handle": handle, "action": "deny"}
        )
        again = await browser.http.post(
            f"{mcp_base}/oauth/consent", data={"handle": handle, "action": "allow"}
        )
        assert first.status_code == 302 and again.status_code == 400
    finally:
        await browser.aclose()


@pytest.mark.gen_test(timeout=60)
async def test_callback_state_is_bound_to_the_browser(mcp_base, gitea, app, http_server):
    async with httpx2.AsyncClient(timeout=20) as http:
        client_id = (await register(http, mcp_base)).json()["client_id"]
    _, challenge = pkce()
    browser = Browser("alice")
    try:
        page = await browser.http.get(authorize_url(mcp_base, client_id, challenge))
        consent = await browser.submit(page)
        assert consent.status_code == 302
        gitea_url = consent.headers["location"]
        state = dict(x.split("=", 1) for x in gitea_url.split("?", 1)[1].split("&"))["state"]
    finally:
        await browser.aclose()
    async with httpx2.AsyncClient(timeout=20) as other:
        reply = await other.get(f"{mcp_base}/oauth/callback?code=gta_x&state={state}")
    assert reply.status_code == 400 and "location" not in reply.headers


@pytest.mark.gen_test(timeout=60)
async def test_code_exchange_failures(mcp_base, app, http_server):
    tokens = await sign_in(mcp_base)
    async with httpx2.AsyncClient(timeout=20) as http:
        # The code is single use.
        replay = await exchange_code(
            http, mcp_base, tokens["client_id"], tokens["code"], tokens["verifier"]
        )
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        unknown = await refresh(http, mcp_base, tokens["refresh_token"], "dcr_deleted")
        assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    # A wrong PKCE verifier.
    async with httpx2.AsyncClient(timeout=20) as http:
        client_id = (await register(http, mcp_base)).json()["client_id"]
        _, challenge = pkce()
        code = (await authorization(mcp_base, client_id, challenge))["code"]
        wrong = await exchange_code(http, mcp_base, client_id, code, "w" * 60)
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


@pytest.mark.gen_test(timeout=60)
async def test_refresh_rotates_and_reuse_revokes_the_family(mcp_base, app, http_server, logs):
    tokens = await sign_in(mcp_base)
    assert tokens["access_token"].startswith("agm_at_") and tokens["scope"] == "gitea:read"
    assert await mcp_status(mcp_base, tokens["access_token"]) == 200
    async with httpx2.AsyncClient(timeout=20) as http:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": tokens["client_id"],
            "resource": f"{mcp_base}/mcp",
        }
        first = await http.post(f"{mcp_base}/oauth/token", data=form)
        assert first.status_code == 200, first.text
        rotated = first.json()
        assert rotated["refresh_token"] != tokens["refresh_token"]
        assert await mcp_status(mcp_base, rotated["access_token"]) == 200
        reuse = await http.post(f"{mcp_base}/oauth/token", data=form)
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
        # The whole family is revoked: the new tokens die too.
        assert await mcp_status(mcp_base, rotated["access_token"]) == 401
        after = await http.post(
            f"{mcp_base}/oauth/token", data={**form, "refresh_token": rotated["refresh_token"]}
        )
        assert after.status_code == 400
    assert logs.audit("oauth_refresh_token_reused")
    assert tokens["refresh_token"] not in logs.audit_text() + logs.stdout_text()


@pytest.mark.gen_test(timeout=60)
async def test_revocation(mcp_base, app, http_server):
    tokens = await sign_in(mcp_base)
    async with httpx2.AsyncClient(timeout=20) as http:
        reply = await http.post(
            f"{mcp_base}/oauth/revoke",
            data={
                "token": tokens["refresh_token"],
                "token_type_hint": "refresh_token",
                "client_id": tokens["client_id"],
            },
        )
        assert reply.status_code == 200, reply.text
    assert await mcp_status(mcp_base, tokens["access_token"]) == 401


@pytest.mark.gen_test(timeout=60)
async def test_gitea_grant_revoked_ends_the_mcp_grant(mcp_base, gitea, app, http_server):
    tokens = await sign_in(mcp_base)
    async with httpx2.AsyncClient(timeout=20) as http:
        ok = await list_repositories(http, mcp_base, tokens["access_token"])
        assert ok.status_code == 200, ok.text
        assert gitea.oauth.revoke("alice") == 1  # alice clicks Revoke in Gitea
        failed = await list_repositories(http, mcp_base, tokens["access_token"])
        assert failed.json()["isError"] is True
        assert "sign in again" in failed.json()["content"][0]["text"]
    assert await mcp_status(mcp_base, tokens["access_token"]) == 401


@pytest.mark.gen_test(timeout=60)
async def test_api_keys_work_beside_oauth_and_bad_tokens_are_rate_limited(
    mcp_base, app, http_server
):
    async with httpx2.AsyncClient(timeout=20) as http:
        accept = {"Accept": "application/json, text/event-stream"}
        key = await http.post(
            f"{mcp_base}/mcp", json=INIT, headers={"Authorization": f"Bearer {KEY}", **accept}
        )
        assert key.status_code == 200
        hosted = await http.post(
            f"{mcp_base}/mcp",
            json=INIT,
            headers={"Authorization": f"Bearer {KEY}", "Origin": "https://chatgpt.com", **accept},
        )
        assert hosted.status_code == 200
        anonymous_hosted = await http.post(
            f"{mcp_base}/mcp", json=INIT, headers={"Origin": "https://chatgpt.com", **accept}
        )
        assert anonymous_hosted.status_code == 401
        statuses = [
            (
                await http.post(
                    f"{mcp_base}/mcp",
                    json=INIT,
                    headers={"Authorization": "Bearer agm_at_" + "x" * 43, **accept},
                )
            ).status_code
            for _ in range(6)
        ]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429


@pytest.mark.gen_test(timeout=60)
async def test_gitea_token_refreshed_once_under_concurrent_calls(
    mcp_base, gitea, ctx, app, http_server
):
    import asyncio

    gitea.oauth.access_token_ttl = 61  # expires 1 s after the refresh margin
    gitea.oauth.invalidate_refresh_tokens = True  # a second refresh with the old token would fail
    tokens = await sign_in(mcp_base)
    await asyncio.sleep(1.5)
    async with httpx2.AsyncClient(timeout=20) as http:
        replies = await asyncio.gather(
            *[list_repositories(http, mcp_base, tokens["access_token"]) for _ in range(5)]
        )
    assert all(r.status_code == 200 and r.json().get("isError") is not True for r in replies)
    assert gitea.oauth.token_requests.get("refresh_token") == 1
    assert ctx.oauth.vault.refreshes == 1


@pytest.mark.gen_test(timeout=60)
async def test_one_user_two_clients_share_one_gitea_grant(mcp_base, gitea, ctx, app, http_server):
    """ChatGPT and Claude for the same person: with INVALIDATE_REFRESH_TOKENS, per-client Gitea
    tokens would invalidate each other; one token set per Gitea user keeps both working."""
    import asyncio

    gitea.oauth.access_token_ttl = 61
    gitea.oauth.invalidate_refresh_tokens = True
    first = await sign_in(mcp_base, "alice")
    second = await sign_in(mcp_base, "alice")
    assert first["client_id"] != second["client_id"]
    await asyncio.sleep(1.5)  # both now need a Gitea refresh
    async with httpx2.AsyncClient(timeout=20) as http:
        for tokens in (first, second, first):
            reply = await list_repositories(http, mcp_base, tokens["access_token"])
            assert reply.status_code == 200 and reply.json().get("isError") is not True, reply.text
    assert len(gitea.oauth.grants) == 1
    assert ctx.oauth.vault.refreshes == 1


@pytest.mark.gen_test(timeout=30)
async def test_failed_token_requests_count_in_the_per_ip_limiter(mcp_base, app, http_server):
    async with httpx2.AsyncClient(timeout=20) as http:
        client_id = (await register(http, mcp_base)).json()["client_id"]
        statuses = [
            (await refresh(http, mcp_base, f"agm_rt_guess{n}", client_id)).status_code
            for n in range(6)
        ]
    assert statuses == [400] * 5 + [429]


@pytest.mark.gen_test(timeout=60)
async def test_static_client_with_a_secret(mcp_base, ctx, app, http_server):
    from aegis_tornado.oauth.admin import add_static_client

    client_id, secret = add_static_client(ctx.oauth.store, "Claude (static)", [REDIRECT])
    verifier, challenge = pkce()
    form = {
        "grant_type": "authorization_code",
        "code": (await authorization(mcp_base, client_id, challenge))["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    async with httpx2.AsyncClient(timeout=20) as http:
        wrong = await http.post(f"{mcp_base}/oauth/token", data=form, auth=(client_id, "nope"))
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        public = await http.post(f"{mcp_base}/oauth/token", data={**form, "client_id": client_id})
        assert public.status_code == 401
        ok = await http.post(f"{mcp_base}/oauth/token", data=form, auth=(client_id, secret))
        assert ok.status_code == 200, ok.text
    assert await mcp_status(mcp_base, ok.json()["access_token"]) == 200


def test_admin_cli_adds_lists_and_revokes(tmp_path, capsys):
    from aegis_tornado.oauth.admin import main

    env_path = str(tmp_path / "state.sqlite3")
    import os

    os.environ["OAUTH_STATE_PATH"] = env_path
    try:
        assert (
            main(
                [
                    "add-client",
                    "--name",
                    "ChatGPT static",
                    "--redirect-uri",
                    "https://chatgpt.com/connector/oauth/abc",
                ]
            )
            == 0
        )
        out = capsys.readouterr().out
        client_id = out.split("client_id:")[1].split()[0]
        secret = out.split("client_secret:")[1].split()[0]
        assert main(["list-clients"]) == 0
        listed = capsys.readouterr().out
        assert client_id in listed and secret not in listed
        assert main(["revoke-user", "alice"]) == 0
        assert "revoked 0" in capsys.readouterr().out
        assert main(["add-client", "--name", "x", "--redirect-uri", "javascript:alert(1)"]) == 2
    finally:
        del os.environ["OAUTH_STATE_PATH"]
    assert secret not in open(env_path, "rb").read().decode("latin-1")


@pytest.mark.gen_test(timeout=60)
async def test_a_session_is_bound_to_its_user(mcp_base, app, http_server):
    alice, carol = await sign_in(mcp_base, "alice"), await sign_in(mcp_base, "carol")
    async with httpx2.AsyncClient(timeout=20) as http:
        init = await post_mcp(http, mcp_base, alice["access_token"], INIT)
        in_session = {
            "Mcp-Session-Id": init.headers["mcp-session-id"],
            "MCP-Protocol-Version": "2025-06-18",
        }
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
        own = await post_mcp(http, mcp_base, alice["access_token"], listing, in_session)
        hijack = await post_mcp(http, mcp_base, carol["access_token"], listing, in_session)
    assert own.status_code == 200
    assert hijack.status_code in (403, 404)


@pytest.mark.gen_test(timeout=60)
async def test_no_resource_binds_to_the_canonical_uri_and_callbacks_are_single_use(
    mcp_base, ctx, app, http_server
):
    async with httpx2.AsyncClient(timeout=20) as http:
        client_id = (await register(http, mcp_base, client_name="Claude")).json()["client_id"]
        verifier, challenge = pkce()
        browser = Browser("alice")
        try:
            # Claude is said to omit `resource`: the grant is bound to this server's /mcp.
            await browser.visit(authorize_url(mcp_base, client_id, challenge, resource=None))
            callback = next(url for url, _ in browser.pages if "/oauth/callback?" in url)
            replayed = await browser.http.get(callback)  # same browser, same state: used
            assert replayed.status_code == 400 and "location" not in replayed.headers
        finally:
            await browser.aclose()
        reply = await exchange_code(http, mcp_base, client_id, browser.result["code"], verifier)
        assert reply.status_code == 200, reply.text
        tokens = reply.json()
        assert await mcp_status(mcp_base, tokens["access_token"]) == 200
        # A deleted client: its tokens die, and the token endpoint says invalid_client (401),
        # which makes Claude register again.
        await ctx.oauth.delete_client(client_id)
        gone = await refresh(http, mcp_base, tokens["refresh_token"], client_id)
        assert gone.status_code == 401 and gone.json()["error"] == "invalid_client"
    assert await mcp_status(mcp_base, tokens["access_token"]) == 401


@pytest.mark.gen_test(timeout=60)
async def test_consent_pages_are_rate_limited_per_ip(mcp_base, app, http_server):
    from aegis_tornado.oauth.service import AUTHORIZATIONS_PER_MINUTE

    async with httpx2.AsyncClient(timeout=20) as http:
        client_id = (await register(http, mcp_base)).json()["client_id"]
        _, challenge = pkce()
        statuses = [
            (await http.get(authorize_url(mcp_base, client_id, challenge))).status_code
            for _ in range(AUTHORIZATIONS_PER_MINUTE + 1)
        ]
    assert statuses[:-1] == [200] * AUTHORIZATIONS_PER_MINUTE and statuses[-1] == 429
