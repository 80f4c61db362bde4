"""The official SDK's OAuth client against the running server: discovery, DCR, our consent,
Gitea's sign-in and grant, the code exchange, and tool calls with the user's own Gitea rights
(reference matrix cases 1, 2, 4, 6)."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from ..conftest import with_settings
from .conftest import BOT_TOKEN, Browser, MemoryStorage, sdk_provider

# The same flows on both stores: the SQLite file (one replica) and Redis (STATE_URL).
BOTH_STORES = True


@contextlib.asynccontextmanager
async def oauth_session(mcp_base: str, browser: Browser, storage: MemoryStorage | None = None):
    provider = sdk_provider(mcp_base, browser, storage)
    async with httpx2.AsyncClient(auth=provider, timeout=20) as http:
        async with streamable_http_client(f"{mcp_base}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def repo_names(session) -> set[str]:
    """Every repository list_repositories shows, all pages."""
    names: set[str] = set()
    for page in range(1, 5):
        result = await session.call_tool("list_repositories", {"page": page, "limit": 50})
        assert not result.is_error, result.content[0].text
        data = json.loads(result.content[0].text)
        names |= {r["full_name"] for r in data["items"]}
        if not data["has_more"]:
            break
    return names


@pytest.mark.gen_test(timeout=60)
async def test_full_flow_reads_with_the_users_own_gitea_token(
    mcp_base, gitea, app, http_server, logs
):
    browser = Browser("alice")
    storage = MemoryStorage()
    try:
        async with oauth_session(mcp_base, browser, storage) as session:
            names = await repo_names(session)
            for tool, arguments in (
                ("search", {"query": "lighthouse"}),
                ("get_file_contents", {"owner": "alice", "repo": "notes", "path": "README.md"}),
                ("list_issues", {"owner": "northwind", "repo": "lighthouse"}),
            ):
                result = await session.call_tool(tool, arguments)
                assert not result.is_error, (tool, result.content[0].text)
    finally:
        await browser.aclose()
    assert "alice/notes" in names  # alice's private repository
    assert "carol/incident-response" not in names
    # Our tokens, prefixed, never Gitea's.
    assert storage.tokens.access_token.startswith("agm_at_")
    assert storage.tokens.refresh_token.startswith("agm_rt_")
    # The tool call reached Gitea as alice, in the header, never with the bot token.
    api_calls = [r for r in gitea.double.requests if r.path.startswith("/api/v1/")]
    assert len(api_calls) > 5
    assert all(r.user == "alice" and r.auth == "header" for r in api_calls), [
        (r.path, r.user) for r in api_calls if r.user != "alice"
    ]
    # The audit names the user; no token, code or secret is in any log line.
    text = logs.stdout_text() + logs.audit_text()
    assert '"gitea_user": "alice"' in text or '"gitea_user":"alice"' in text
    for secret in (storage.tokens.access_token, storage.tokens.refresh_token, BOT_TOKEN):
        assert secret not in text
    events = {r["event"] for r in logs.audit()}
    assert {
        "oauth_client_registered",
        "oauth_consent_given",
        "oauth_authorization_granted",
        "oauth_token_issued",
    } <= events


@pytest.mark.gen_test(timeout=90)
async def test_two_users_see_their_own_repositories(mcp_base, gitea, app, http_server):
    seen = {}
    for login in ("alice", "carol"):
        browser = Browser(login)
        try:
            async with oauth_session(mcp_base, browser) as session:
                seen[login] = await repo_names(session)
                other = "carol/incident-response" if login == "alice" else "alice/notes"
                missing = await session.call_tool(
                    "get_repository", {"owner": other.split("/")[0], "repo": other.split("/")[1]}
                )
                own = await session.call_tool(
                    "get_repository",
                    {"owner": login, "repo": "notes" if login == "alice" else "incident-response"},
                )
        finally:
            await browser.aclose()
        assert missing.is_error and "not found" in missing.content[0].text.lower()
        assert not own.is_error, own.content[0].text
    assert "alice/notes" in seen["alice"] and "alice/notes" not in seen["carol"]
    assert "carol/incident-response" in seen["carol"]
    assert "carol/incident-response" not in seen["alice"]


@pytest.mark.gen_test(timeout=60)
@with_settings(oauth_access_token_ttl=2)
async def test_sdk_refreshes_an_expired_access_token(mcp_base, gitea, app, http_server, logs):
    browser = Browser("alice")
    storage = MemoryStorage()
    try:
        async with oauth_session(mcp_base, browser, storage) as session:
            first = storage.tokens.refresh_token
            assert not (await session.call_tool("list_repositories", {})).is_error
            await asyncio.sleep(2.5)
            result = await session.call_tool("list_repositories", {})
            assert not result.is_error, result.content[0].text
    finally:
        await browser.aclose()
    assert storage.tokens.refresh_token != first  # rotated
    assert logs.audit("oauth_token_refreshed")
    assert (
        len([p for p in browser.pages if p[0].startswith(f"{mcp_base}/oauth/authorize")]) == 1
    )  # no new sign-in


@pytest.mark.gen_test(timeout=90)
async def test_revoked_gitea_grant_makes_the_sdk_sign_in_again(mcp_base, gitea, app, http_server):
    browser = Browser("alice")
    try:
        async with oauth_session(mcp_base, browser) as session:
            assert not (await session.call_tool("list_repositories", {})).is_error
            gitea.oauth.revoke("alice")  # alice clicks Revoke in Gitea's settings
            refused = await session.call_tool("list_repositories", {})
            assert refused.is_error
            # Our tokens died with the Gitea grant: the next request is 401, and the SDK runs
            # the whole flow again (the browser signs in again) and succeeds.
            again = await session.call_tool("list_repositories", {})
            assert not again.is_error, again.content[0].text
    finally:
        await browser.aclose()
    assert len([p for p in browser.pages if p[0].startswith(f"{mcp_base}/oauth/authorize")]) == 2


class TamperingBrowser(Browser):
    async def callback(self):
        result = await super().callback()
        return result.model_copy(update={"iss": "https://evil.example"})


@pytest.mark.gen_test(timeout=60)
async def test_sdk_refuses_a_tampered_issuer(mcp_base, gitea, app, http_server):
    browser = TamperingBrowser("alice")
    storage = MemoryStorage()
    try:
        with pytest.raises(BaseException) as raised:
            async with oauth_session(mcp_base, browser, storage):
                pass
    finally:
        await browser.aclose()
    assert "iss" in repr(raised.value).lower() or "issuer" in repr(raised.value).lower()
    assert storage.tokens is None
