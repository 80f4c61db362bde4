"""Per-key scopes, configured in the YAML file and enforced through the running server.

Every field (repos, tools, sensitive_paths, expires, allowed_ips) is exercised through the
REST and MCP transports with the real Gitea tools over the Gitea double; the double's request
log proves that a repository outside a key's scope is never named to Gitea, exactly like a
denied one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import re
import textwrap

import pytest

from aegis_tornado.auth.scopes import KeyScope, parse_scope
from aegis_tornado.settings import load_settings

from ..conftest import KEY, body_json, with_settings
from ..support import start_up
from ..tools.conftest import GITEA_TOKEN, gitea, registry  # noqa: F401  (fixtures)
from ..web.test_sdk_clients import connect  # noqa: F401  (fixture: both SDK transports)


def _key(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


REPOS_KEY = _key("scope-repos")
TOOLS_KEY = _key("scope-tools")
PATHS_KEY = _key("scope-paths")
EXPIRED_KEY = _key("scope-expired")
FUTURE_KEY = _key("scope-future")
NETWORK_KEY = _key("scope-network")
LOCAL_KEY = _key("scope-local")
RENAMED_KEY = _key("scope-renamed")

YAML = f"""
api_keys:
  - key: {KEY}
    name: primary
  - key: {REPOS_KEY}
    name: repos-only
    repos: {{allow: [northwind/*], deny: [northwind/lighthouse]}}
  - key: {TOOLS_KEY}
    name: tools-only
    tools: [get_repository, list_repositories]
  - key: {PATHS_KEY}
    name: no-markdown
    sensitive_paths: ["*.md"]
  - key: {EXPIRED_KEY}
    name: expired
    expires: 2001-01-01
  - key: {FUTURE_KEY}
    name: future
    expires: 2999-12-31
  - sha256: {hashlib.sha256(NETWORK_KEY.encode()).hexdigest()}
    name: office-only
    allowed_ips: [10.0.0.0/8, "2001:db8::/32"]
  - key: {LOCAL_KEY}
    name: loopback-only
    allowed_ips: [127.0.0.0/8]
  - key: {RENAMED_KEY}
    name: old-name-only
    repos: [northwind/beacon, alice/*]
"""


@pytest.fixture
def aegis_settings(tmp_path, settings_overrides):
    config = tmp_path / "aegis.yaml"
    config.write_text(YAML)
    settings = load_settings(
        str(config),
        environ={
            "GITEA_URL": "http://127.0.0.1:9",
            "GITEA_TOKEN": "t0k",
            "AUDIT_LOG_PATH": str(tmp_path / "audit.log"),
        },
    )
    return dataclasses.replace(settings, log_level="debug", **settings_overrides)


async def call_as(api, key: str, tool: str, **arguments) -> dict:
    response = await api.request(
        "/mcp/tool/call", "POST", key=key, json_body={"tool": tool, "arguments": arguments}
    )
    assert response.code == 200, response.body
    return body_json(response)


def text_of(result: dict) -> str:
    return result["content"][0]["text"]


def named_repositories(gitea) -> set[str]:
    found = set()
    for path in gitea.requested_paths():
        match = re.match(r"/api/v1/repos/([^/]+)/([^/]+)", path)
        if match and match.group(1) != "issues":
            found.add(f"{match.group(1)}/{match.group(2)}".lower())
    return found


# --- repos -------------------------------------------------------------------------------------

REPO_TOOLS = [
    ("get_repository", {}),
    ("list_branches", {}),
    ("list_commits", {}),
    ("get_file_tree", {}),
    ("get_file_contents", {"path": "README.md"}),
    ("list_issues", {"state": "all"}),
]


@pytest.mark.gen_test(timeout=30)
async def test_a_repository_outside_the_scope_is_not_found_like_a_missing_one(api, gitea):
    for owner, repo in (("alice", "notes"), ("northwind", "lighthouse"), ("ALICE", "Notes")):
        for tool, extra in REPO_TOOLS:
            scoped = await call_as(api, REPOS_KEY, tool, owner=owner, repo=repo, **extra)
            missing = await call_as(
                api, REPOS_KEY, tool, owner="northwind", repo="no-such-repo", **extra
            )
            assert scoped.get("isError") is True and missing.get("isError") is True
            assert text_of(scoped) == text_of(missing).replace(
                "northwind/no-such-repo", f"{owner}/{repo}"
            ), (tool, text_of(scoped))
    # Gitea never heard those names: refused before any request, as a denied one is.
    assert not {"alice/notes", "northwind/lighthouse"} & named_repositories(gitea)
    # The same repositories are reachable with the unscoped key: only the scope narrowed.
    allowed = await call_as(api, KEY, "get_repository", owner="alice", repo="notes")
    assert not allowed.get("isError"), text_of(allowed)


@pytest.mark.gen_test(timeout=30)
async def test_listings_and_search_see_only_the_scoped_repositories(api, gitea):
    listed = await call_as(api, REPOS_KEY, "list_repositories", limit=50)
    names = {r["full_name"] for r in listed["structuredContent"]["items"]}
    assert names and all(n.startswith("northwind/") for n in names), names
    assert "northwind/lighthouse" not in names
    everything = await call_as(api, KEY, "list_repositories", query="notes")
    assert "alice/notes" in {r["full_name"] for r in everything["structuredContent"]["items"]}
    for query in ("notes", "lighthouse", "dns"):
        found = await call_as(api, REPOS_KEY, "search", query=query)
        for result in found["structuredContent"]["results"]:
            repo = re.split(r"[#@]", result["id"].split(":", 1)[1])[0].lower()
            assert repo.startswith("northwind/") and repo != "northwind/lighthouse", result


@with_settings(repo_denylist=("northwind/beacon",))
@pytest.mark.gen_test(timeout=30)
async def test_a_scope_cannot_widen_the_global_policy(api, gitea):
    """northwind/* in the key's scope does not undo the global deny of northwind/beacon."""
    denied = await call_as(api, REPOS_KEY, "get_repository", owner="northwind", repo="beacon")
    missing = await call_as(api, REPOS_KEY, "get_repository", owner="northwind", repo="nope")
    assert text_of(denied) == text_of(missing).replace("northwind/nope", "northwind/beacon")
    assert "northwind/beacon" not in named_repositories(gitea)


@pytest.mark.gen_test(timeout=30)
async def test_a_scope_allowing_an_old_name_does_not_follow_the_rename(api, gitea):
    """Gitea redirects northwind/beacon to northwind/lighthouse: the key's scope, like the
    global policy, is checked on the redirect, so lighthouse is never requested."""
    for tool, extra in REPO_TOOLS:
        result = await call_as(api, RENAMED_KEY, tool, owner="northwind", repo="beacon", **extra)
        assert result.get("isError") is True and "not found" in text_of(result), (tool, result)
    assert "northwind/lighthouse" not in named_repositories(gitea)
    ok = await call_as(api, RENAMED_KEY, "get_repository", owner="alice", repo="notes")
    assert not ok.get("isError"), text_of(ok)


# --- tools -------------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_tools_list_shows_each_key_only_its_tools(api):
    scoped = body_json(await api.request("/mcp/tools", key=TOOLS_KEY))
    assert {t["name"] for t in scoped["tools"]} == {"get_repository", "list_repositories"}
    full = body_json(await api.request("/mcp/tools", key=KEY))
    assert len(full["tools"]) > 2
    reply = await api.mcp({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, key=TOOLS_KEY)
    assert reply.code == 200, reply.body
    assert {t["name"] for t in body_json(reply)["result"]["tools"]} == {
        "get_repository",
        "list_repositories",
    }


@pytest.mark.gen_test(timeout=30)
async def test_a_tool_outside_the_scope_is_an_unknown_tool(api, gitea):
    async def rest(tool: str):
        return await api.request(
            "/mcp/tool/call",
            "POST",
            key=TOOLS_KEY,
            json_body={"tool": tool, "arguments": {"owner": "alice", "repo": "notes"}},
        )

    outside, unknown = await rest("list_branches"), await rest("no_such_tool")
    assert outside.code == unknown.code == 404
    assert body_json(outside)["message"] == body_json(unknown)["message"].replace(
        "no_such_tool", "list_branches"
    )

    async def mcp(tool: str):
        message = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": tool, "arguments": {"owner": "alice", "repo": "notes"}},
        }
        return body_json(await api.mcp(message, key=TOOLS_KEY))

    outside_rpc, unknown_rpc = await mcp("list_branches"), await mcp("no_such_tool")
    assert outside_rpc["error"]["code"] == unknown_rpc["error"]["code"]
    assert outside_rpc["error"]["message"] == unknown_rpc["error"]["message"].replace(
        "no_such_tool", "list_branches"
    )
    # Gitea was never asked for the branches.
    assert not any(p.endswith("/branches") for p in gitea.requested_paths())
    # The tool in scope works, and the unscoped key still has every tool.
    ok = await call_as(api, TOOLS_KEY, "get_repository", owner="alice", repo="notes")
    assert not ok.get("isError"), text_of(ok)
    assert not (await call_as(api, KEY, "list_branches", owner="alice", repo="notes")).get(
        "isError"
    )


@pytest.mark.gen_test(timeout=30)
async def test_the_official_sdk_client_sees_only_the_scoped_tools(connect, base_url, api):
    from mcp.shared.exceptions import MCPError

    async with connect(base_url, key=TOOLS_KEY) as session:
        await session.initialize()
        listed = await session.list_tools()
        assert {t.name for t in listed.tools} == {"get_repository", "list_repositories"}
        found = await session.call_tool("get_repository", {"owner": "alice", "repo": "notes"})
        assert not found.is_error
        errors = []
        for name in ("list_branches", "no_such_tool"):
            try:
                result = await session.call_tool(name, {"owner": "alice", "repo": "notes"})
                errors.append(result.content[0].text)
            except MCPError as error:
                errors.append(f"{error.code} {error.message}")
        assert errors[0] == errors[1].replace("no_such_tool", "list_branches")


# --- sensitive_paths -----------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_scoped_sensitive_paths_are_added_to_the_global_list(api, gitea):
    refused = await call_as(
        api, PATHS_KEY, "get_file_contents", owner="alice", repo="notes", path="README.md"
    )
    assert refused.get("isError") is True
    assert "sensitive-file pattern '*.md'" in text_of(refused)
    assert not any("README.md" in p for p in gitea.requested_paths())
    # The global list still applies to the scoped key.
    dotenv = await call_as(
        api, PATHS_KEY, "get_file_contents", owner="alice", repo="notes", path=".env"
    )
    assert "sensitive-file pattern '.env*'" in text_of(dotenv)
    # And the scope is this key's only.
    allowed = await call_as(
        api, KEY, "get_file_contents", owner="alice", repo="notes", path="README.md"
    )
    assert not allowed.get("isError"), text_of(allowed)


# --- expires and allowed_ips ---------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_an_expired_key_is_refused_with_its_own_audit_reason(api, logs):
    response = await api.request("/mcp/tools", key=EXPIRED_KEY)
    assert response.code == 401
    assert body_json(response)["message"] == "API key expired"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    denied = logs.audit("access_denied")
    assert [r["reason"] for r in denied] == ["expired_api_key"]
    assert EXPIRED_KEY not in logs.audit_text() + logs.stdout_text()
    assert (await api.request("/mcp/tools", key=FUTURE_KEY)).code == 200


@pytest.mark.gen_test(timeout=30)
async def test_a_key_used_outside_its_allowed_ips_is_refused(api, logs):
    response = await api.request("/mcp/tools", key=NETWORK_KEY)
    assert response.code == 401
    # Answered as an invalid key: the caller learns nothing about the key's validity.
    invalid = await api.request("/mcp/tools", key=_key("not-configured"))
    assert body_json(response) == body_json(invalid)
    reasons = [r["reason"] for r in logs.audit("access_denied")]
    assert reasons == ["ip_not_allowed", "invalid_api_key"]
    assert (await api.request("/mcp/tools", key=LOCAL_KEY)).code == 200


@with_settings(trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
@pytest.mark.gen_test(timeout=30)
async def test_allowed_ips_use_the_client_address_behind_a_trusted_proxy(api):
    inside = await api.request(
        "/mcp/tools", key=NETWORK_KEY, headers={"X-Forwarded-For": "10.1.2.3"}
    )
    assert inside.code == 200, inside.body
    outside = await api.request(
        "/mcp/tools", key=NETWORK_KEY, headers={"X-Forwarded-For": "192.0.2.7"}
    )
    assert outside.code == 401


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, message",
    [
        ("repos: acme/*", "repos must be a list"),
        ("repos: {allow: ['*/x']}", "owner cannot be a wildcard"),
        ("repos: {only: [acme/*]}", "may only have 'allow' and 'deny'"),
        ("repos: []", "repos is empty"),
        ("tools: get_repository", "tools must be a list"),
        ("tools: ['bad name!']", "is not a tool name"),
        ("sensitive_paths: ['a\\\\b']", "backslashes"),
        ("expires: next week", "expires must be a date"),
        ("allowed_ips: [10.0.0.300/8]", "is not an IP address or CIDR"),
        ("allowed_ips: 10.0.0.0/8", "allowed_ips must be a list"),
    ],
)
def test_bad_scope_fields_stop_start_up_with_one_line_naming_them(
    tmp_path, monkeypatch, entry, message
):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "aegis.yaml"
    config.write_text(
        textwrap.dedent(f"""\
            gitea_url: http://127.0.0.1:9
            gitea_token: t0k
            api_keys:
              - key: {KEY}
                {entry}
            """)
    )
    status, stderr = start_up("--config", str(config))
    assert status == 2
    assert message in stderr
    assert "api_keys (config file): key #1" in stderr and stderr.count("\n") == 1
    assert KEY not in stderr


def test_expires_accepts_dates_and_times():
    assert parse_scope({"name": "x"}) is None
    day = parse_scope({"expires": "2030-05-01"})
    assert isinstance(day, KeyScope) and day.expires is not None
    assert day.expires.isoformat() == "2030-05-01T00:00:00+00:00"
    moment = parse_scope({"expires": "2030-05-01T12:00:00+02:00"})
    assert moment is not None and moment.expires is not None
    assert moment.expires.isoformat() == "2030-05-01T10:00:00+00:00"
    assert parse_scope({"allowed_ips": ["::ffff:10.0.0.0/104"]}) is not None
    mapped = parse_scope({"allowed_ips": ["10.0.0.0/8"]})
    assert mapped is not None and mapped.allows_ip("::ffff:10.9.9.9")
    assert not mapped.allows_ip("not an ip")
