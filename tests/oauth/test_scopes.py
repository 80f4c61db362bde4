"""OAUTH_SCOPES through the running server, after a real sign-in with the SDK's OAuth client:
a Gitea user's scope and an OAuth client's scope narrow what the caller reaches exactly as a
key's scope does, and both together intersect. Client IDs come from dynamic registration, so
client scopes are applied the way an operator would: a SIGHUP-style reload of the YAML file."""

from __future__ import annotations

import json
import textwrap

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from aegis_tornado.assembly import build_oauth_scopes
from aegis_tornado.auth.scopes import intersect, parse_scope
from aegis_tornado.reload import KeySource, reload_keys
from aegis_tornado.settings import load_settings

from ..conftest import KEY, with_settings
from ..support import start_up
from .conftest import Browser, MemoryStorage
from .test_sdk_flow import oauth_session, repo_names


def text(result) -> str:
    return result.content[0].text


async def refusal(session, tool: str) -> MCPError:
    """The JSON-RPC error a tools/call is answered with (an unknown tool is one)."""
    with pytest.raises(MCPError) as raised:
        await session.call_tool(tool, {"owner": "alice", "repo": "notes"})
    return raised.value


async def reload_oauth_scopes(ctx, tmp_path, scopes: dict) -> None:
    """Write the YAML file an operator would and reload it as SIGHUP does."""
    path = tmp_path / "aegis.yaml"
    path.write_text(
        json.dumps({"api_keys": [{"key": KEY, "name": "primary"}], "oauth_scopes": scopes})
    )
    assert await reload_keys(ctx, KeySource(config_path=str(path)))


async def sign_in(mcp_base: str, storage: MemoryStorage, login: str = "alice") -> str:
    """A full OAuth sign-in (DCR, consent, Gitea); the client ID the server registered."""
    browser = Browser(login)
    try:
        async with oauth_session(mcp_base, browser, storage) as session:
            assert (await session.list_tools()).tools
    finally:
        await browser.aclose()
    return storage.client_info.client_id


@pytest.mark.gen_test(timeout=60)
@with_settings(oauth_scopes={"users": {"Alice": {"repos": ["alice/*"]}}})
async def test_a_user_scope_hides_a_repository_the_user_can_read(mcp_base, gitea, app, http_server):
    browser = Browser("alice")
    try:
        async with oauth_session(mcp_base, browser) as session:
            names = await repo_names(session)
            missing = await session.call_tool(
                "get_repository", {"owner": "northwind", "repo": "nope"}
            )
            gitea.double.clear_requests()
            scoped = await session.call_tool(
                "get_repository", {"owner": "northwind", "repo": "lighthouse"}
            )
            asked = [record.path for record in gitea.double.requests]
            own = await session.call_tool("get_repository", {"owner": "alice", "repo": "notes"})
    finally:
        await browser.aclose()
    # alice reads northwind/lighthouse in Gitea (public), but her scope leaves it out.
    assert names and all(name.startswith("alice/") for name in names), names
    assert "alice/notes" in names
    assert scoped.is_error and missing.is_error
    assert text(scoped) == text(missing).replace("northwind/nope", "northwind/lighthouse")
    assert not any("lighthouse" in path for path in asked), asked  # never named to Gitea
    assert not own.is_error, text(own)


@pytest.mark.gen_test(timeout=90)
async def test_a_client_scope_hides_a_tool_and_refuses_it_like_an_unknown_one(
    mcp_base, gitea, app, http_server, ctx, tmp_path, logs
):
    storage = MemoryStorage()
    client_id = await sign_in(mcp_base, storage)
    await reload_oauth_scopes(
        ctx,
        tmp_path,
        {"clients": {client_id: {"tools": ["get_repository", "list_branches", "list_brances"]}}},
    )
    browser = Browser("alice")  # not visited: the stored tokens are still good
    try:
        async with oauth_session(mcp_base, browser, storage) as session:
            listed = {tool.name for tool in (await session.list_tools()).tools}
            outside = await refusal(session, "list_issues")
            unknown = await refusal(session, "no_such_tool")
            inside = await session.call_tool("get_repository", {"owner": "alice", "repo": "notes"})
    finally:
        await browser.aclose()
    assert not browser.pages  # no second sign-in
    assert listed == {"get_repository", "list_branches"}
    assert outside.error.code == unknown.error.code
    assert outside.error.message == unknown.error.message.replace("no_such_tool", "list_issues")
    assert not inside.is_error, text(inside)
    reloaded = [line for line in logs.stdout_text().splitlines() if "config_reloaded" in line]
    assert len(reloaded) == 1 and '"oauth_scopes": 1' in reloaded[0]
    # The typo is reported under the entry's label, and simply grants nothing.
    warned = [line for line in logs.stdout_text().splitlines() if "names_unknown_tools" in line]
    assert len(warned) == 1 and f"client:{client_id}" in warned[0] and "list_brances" in warned[0]


ALICE_SCOPE = {
    "repos": ["alice/*", "northwind/*"],
    "tools": ["get_repository", "get_file_contents", "list_issues"],
    "sensitive_paths": ["*.md"],
}


@pytest.mark.gen_test(timeout=90)
@with_settings(oauth_scopes={"users": {"alice": ALICE_SCOPE}})
async def test_user_and_client_scopes_intersect(mcp_base, gitea, app, http_server, ctx, tmp_path):
    storage = MemoryStorage()
    client_id = await sign_in(mcp_base, storage)
    client_scope = {
        "repos": {"allow": ["northwind/*"]},
        "tools": ["get_repository", "get_file_contents", "list_branches"],
        "sensitive_paths": ["*.toml"],
    }
    await reload_oauth_scopes(
        ctx,
        tmp_path,
        {"users": {"alice": ALICE_SCOPE}, "clients": {client_id: client_scope}},
    )
    browser = Browser("alice")
    try:
        async with oauth_session(mcp_base, browser, storage) as session:
            listed = {tool.name for tool in (await session.list_tools()).tools}
            in_both = await session.call_tool(
                "get_repository", {"owner": "northwind", "repo": "lighthouse"}
            )
            user_only = await session.call_tool(
                "get_repository", {"owner": "alice", "repo": "notes"}
            )
            missing = await session.call_tool("get_repository", {"owner": "alice", "repo": "nope"})
            readme = await session.call_tool(
                "get_file_contents",
                {"owner": "northwind", "repo": "lighthouse", "path": "README.md"},
            )
            pyproject = await session.call_tool(
                "get_file_contents",
                {"owner": "northwind", "repo": "lighthouse", "path": "pyproject.toml"},
            )
            source = await session.call_tool(
                "get_file_contents",
                {"owner": "northwind", "repo": "lighthouse", "path": "src/lighthouse/__init__.py"},
            )
    finally:
        await browser.aclose()
    assert listed == {"get_repository", "get_file_contents"}  # tools in both
    assert not in_both.is_error, text(in_both)
    # alice/notes: the user's scope allows it, the client's does not.
    assert user_only.is_error
    assert text(user_only) == text(missing).replace("alice/nope", "alice/notes")
    # Sensitive paths from both scopes apply.
    assert readme.is_error and pyproject.is_error
    assert not source.is_error, text(source)


@pytest.mark.gen_test(timeout=90)
async def test_expired_and_ip_bound_oauth_scopes_refuse_at_the_gate(
    mcp_base, gitea, app, http_server, ctx, tmp_path, logs
):
    storage = MemoryStorage()
    client_id = await sign_in(mcp_base, storage)
    token = storage.tokens.access_token
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/list",
    }
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }

    async def status() -> int:
        async with httpx2.AsyncClient(timeout=20) as http:
            response = await http.post(f"{mcp_base}/mcp", json=initialize, headers=headers)
            return response.status_code

    await reload_oauth_scopes(ctx, tmp_path, {"users": {"alice": {"expires": "2001-01-01"}}})
    assert await status() == 401
    await reload_oauth_scopes(
        ctx, tmp_path, {"clients": {client_id: {"allowed_ips": ["10.0.0.0/8"]}}}
    )
    assert await status() == 401
    await reload_oauth_scopes(
        ctx, tmp_path, {"clients": {client_id: {"allowed_ips": ["127.0.0.0/8"]}}}
    )
    assert await status() != 401
    # (the SDK's first request, before it signs in, is the missing_api_key one)
    reasons = [r["reason"] for r in logs.audit("access_denied")]
    assert [r for r in reasons if r != "missing_api_key"] == [
        "oauth_scope_expired",
        "ip_not_allowed",
    ]
    assert token not in logs.audit_text() + logs.stdout_text()


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ("users: [alice]", "users must be a mapping"),
        ("users: {alice: {repos: []}}", "users.alice: repos is empty"),
        ("clients: {abc: {colour: red}}", "clients.abc has unknown field(s): colour"),
        ("clients: {abc: {}}", "clients.abc has no scope fields"),
        ("groups: {}", "unknown field(s): groups"),
        ("users: {alice: {tools: [get_repository]}, ALICE: {tools: [search]}}", "listed twice"),
    ],
)
def test_bad_oauth_scopes_stop_start_up_with_one_line_naming_them(
    tmp_path, monkeypatch, scopes, message
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "aegis.yaml"
    path.write_text(textwrap.dedent(f"oauth_scopes: {{{scopes}}}\n"))
    status, stderr = start_up("--config", str(path))
    assert status == 2
    assert "oauth_scopes" in stderr and message in stderr
    assert stderr.count("\n") == 1


def test_oauth_scopes_from_the_environment_as_json():
    settings = load_settings(
        None, {"OAUTH_SCOPES": '{"users": {"Bob": {"tools": ["search", "fetch"]}}}'}
    )
    scopes = build_oauth_scopes(settings)
    scope = scopes.for_caller("bob", "any-client")
    assert scope is not None and scope.tools == frozenset({"search", "fetch"})
    assert scopes.for_caller("alice", "any-client") is None


def test_intersect_keeps_what_both_scopes_allow():
    user = parse_scope(
        {
            "repos": {"allow": ["acme/*"], "deny": ["acme/vault"]},
            "tools": ["search", "fetch", "get_repository"],
            "sensitive_paths": ["*.sql"],
            "expires": "2030-01-01",
            "allowed_ips": ["10.0.0.0/8", "192.168.1.0/24"],
        }
    )
    client = parse_scope(
        {
            "repos": ["acme/web", "acme/vault", "other/*"],
            "tools": ["fetch", "get_repository", "list_branches"],
            "sensitive_paths": ["*.key"],
            "expires": "2029-06-30",
            "allowed_ips": ["10.1.0.0/16", "172.16.0.0/12"],
        }
    )
    both = intersect(user, client)
    assert both is not None and both.repos is not None
    assert both.repos.allows("acme", "web")
    assert not both.repos.allows("acme", "api")  # the client's scope leaves it out
    assert not both.repos.allows("acme", "vault")  # the user's scope denies it
    assert not both.repos.allows("other", "x")  # the user's scope leaves it out
    assert not both.repos.may_allow_owner("other") and both.repos.may_allow_owner("acme")
    assert both.tools == frozenset({"fetch", "get_repository"})
    assert both.sensitive_paths is not None
    assert both.sensitive_paths.blocked_reason("db/dump.sql")
    assert both.sensitive_paths.blocked_reason("certs/tls.key")
    assert both.expires is not None and both.expires.date().isoformat() == "2029-06-30"
    assert both.allows_ip("10.1.2.3") and not both.allows_ip("10.2.0.1")
    assert not both.allows_ip("192.168.1.5") and not both.allows_ip("172.16.0.1")
    assert intersect(user, None) is user and intersect(None, None) is None
