"""OAuth shared through Redis by two product processes (``python -m aegis_tornado``, the real
entrypoint) behind one public URL, as two replicas behind a load balancer are: a user signed
in on A is known on B, refresh and reuse detection hold across them, codes are single use
across them, and Redis going away fails closed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from aegis_tornado.gitea_double.oauth2 import OAuthApp

from ..hardening.process import ServerProcess, clean_env
from ..oauth.conftest import (
    BOT_TOKEN,
    GITEA_CLIENT_ID,
    GITEA_CLIENT_SECRET,
    REDIRECT,
    VAULT_KEY,
    Browser,
    gitea,  # noqa: F401  (the Gitea double with its OAuth provider, a fixture)
)
from ..oauth.test_endpoints import authorize_url, mcp_status, pkce, register, sign_in
from ..redis_server import free_port

pytestmark = pytest.mark.slow

#: Short, so that a revocation made on one replica reaches the other's cache within the test.
CACHE_TTL = 1.0
#: Requests racing for one code or one refresh token, alternately on A and B: enough that
#: a read-then-write store lets more than one through.
RACERS = 8


def replica_env(public_url: str, gitea_url: str, redis_url: str, workdir) -> dict[str, str]:
    return {
        "STATE_URL": redis_url,
        "GITEA_URL": gitea_url,
        "GITEA_TOKEN": BOT_TOKEN,
        "PUBLIC_URL": public_url,
        "OAUTH_ENABLED": "true",
        "GITEA_OAUTH_CLIENT_ID": GITEA_CLIENT_ID,
        "GITEA_OAUTH_CLIENT_SECRET": GITEA_CLIENT_SECRET,
        "OAUTH_ENCRYPTION_KEY": VAULT_KEY,
        "OAUTH_STATE_PATH": str(workdir / "oauth.sqlite3"),  # unused with STATE_URL
        "OAUTH_TOKEN_CACHE_TTL": str(CACHE_TTL),
        "LOG_LEVEL": "debug",  # the most verbose: still no secret in any line
        # The races below send many failing attempts from one address on purpose.
        "MAX_AUTH_FAILURES": "100",
    }


@pytest.fixture
def replicas(tmp_path, redis_url, gitea):  # noqa: F811
    """A and B with one PUBLIC_URL (A's address: the "load balancer" is the test choosing a
    replica per request), the Gitea double of this process, one Redis."""
    port_a = free_port()
    public_url = f"http://127.0.0.1:{port_a}"
    gitea.oauth.register_app(
        OAuthApp(GITEA_CLIENT_ID, GITEA_CLIENT_SECRET, (f"{public_url}/oauth/callback",))
    )
    started = []
    for name, port in (("a", port_a), ("b", 0)):
        (tmp_path / name).mkdir()
        started.append(
            ServerProcess(
                tmp_path / name,
                module="aegis_tornado",
                args=("--port", str(port)),
                **replica_env(public_url, gitea.url, redis_url, tmp_path / name),
            )
        )
    yield started
    for server in started:
        server.kill()


async def read_repositories(base: str, token: str) -> set[str]:
    """An MCP session on ``base`` with a bearer token: the repositories the caller sees."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=20) as http:
        async with streamable_http_client(f"{base}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("list_repositories", {"limit": 50})
                assert not result.is_error, result.content[0].text
                return {r["full_name"] for r in json.loads(result.content[0].text)["items"]}


def refresh_form(tokens: dict, public_url: str, refresh_token: str | None = None) -> dict:
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token or tokens["refresh_token"],
        "client_id": tokens["client_id"],
        "resource": f"{public_url}/mcp",
    }


async def eventually_status(base: str, token: str, expected: int, within: float) -> int:
    deadline = time.monotonic() + within
    while True:
        status = await mcp_status(base, token)
        if status == expected or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.1)


@pytest.mark.gen_test(timeout=90)
async def test_a_token_issued_on_a_works_on_b_refreshes_on_b_and_reuse_revokes_everywhere(
    replicas,
    gitea,
    redis_server,  # noqa: F811
):
    a, b = replicas
    tokens = await sign_in(a.base_url)  # DCR, consent, Gitea sign-in and the code, all on A
    # B never saw this user: the token, the grant and alice's sealed Gitea token come from Redis.
    names = await read_repositories(b.base_url, tokens["access_token"])
    assert "alice/notes" in names and "carol/incident-response" not in names
    async with httpx2.AsyncClient(timeout=20) as http:
        first = await http.post(f"{b.base_url}/oauth/token", data=refresh_form(tokens, a.base_url))
        assert first.status_code == 200, first.text
        rotated = first.json()
        assert await mcp_status(a.base_url, rotated["access_token"]) == 200
        assert await mcp_status(b.base_url, rotated["access_token"]) == 200  # now cached on B
        # The refresh token B rotated, used again on A: a reuse; the family is revoked.
        reuse = await http.post(f"{a.base_url}/oauth/token", data=refresh_form(tokens, a.base_url))
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
        assert await mcp_status(a.base_url, rotated["access_token"]) == 401  # at once on A
        # B verified the token a moment ago: it is refused within OAUTH_TOKEN_CACHE_TTL.
        assert (
            await eventually_status(b.base_url, rotated["access_token"], 401, 3 * CACHE_TTL) == 401
        )
        after = await http.post(
            f"{b.base_url}/oauth/token",
            data=refresh_form(tokens, a.base_url, rotated["refresh_token"]),
        )
        assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
    assert audited(a, event="oauth_refresh_token_reused")
    # No token, code, Gitea token or secret in any log line of either replica, nor in Redis.
    secrets = [
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["code"],
        rotated["access_token"],
        rotated["refresh_token"],
        GITEA_CLIENT_SECRET,
        VAULT_KEY,
        *gitea.oauth.tokens,
    ]
    for server in (a, b):
        text = "".join(server.lines) + server.stderr_so_far() + json.dumps(audit_of(server))
        for secret in secrets:
            assert secret not in text
    dump = redis_dump(redis_server)
    for secret in secrets:
        assert secret not in dump
    # Every OAuth key carries a TTL (no static client was created here).
    client = redis_server.client()
    keys = [k.decode() for k in client.scan_iter(match="aegis:oauth:*")]
    assert {k.split(":")[2] for k in keys} >= {"token", "family", "client", "gitea", "vault-key"}
    assert all(client.pttl(k) > 0 for k in keys), [(k, client.pttl(k)) for k in keys]


@pytest.mark.gen_test(timeout=90)
async def test_one_refresh_token_used_at_once_on_a_and_b_is_rotated_once_and_revokes_the_family(
    replicas,
):
    a, b = replicas
    tokens = await sign_in(a.base_url)
    async with httpx2.AsyncClient(timeout=20) as http:
        form = refresh_form(tokens, a.base_url)
        replies = await asyncio.gather(
            *(http.post(f"{(a, b)[i % 2].base_url}/oauth/token", data=form) for i in range(RACERS))
        )
        # One rotation wins; the others are reuses, which revoke the family, the winner's
        # new tokens included (saved into a revoked family, or revoked with it).
        statuses = sorted(r.status_code for r in replies)
        assert statuses == [200] + [400] * (RACERS - 1), [r.text for r in replies]
        winner = next(r.json() for r in replies if r.status_code == 200)
        for server in (a, b):
            assert await mcp_status(server.base_url, winner["access_token"]) == 401
        again = await http.post(
            f"{b.base_url}/oauth/token",
            data=refresh_form(tokens, a.base_url, winner["refresh_token"]),
        )
        assert again.status_code == 400
    assert audited(a, b, event="oauth_refresh_token_reused")


@pytest.mark.gen_test(timeout=90)
async def test_a_code_redeemed_on_a_and_on_b_at_once_is_redeemed_once(replicas):
    a, b = replicas
    async with httpx2.AsyncClient(timeout=20) as http:
        client_id = (await register(http, a.base_url)).json()["client_id"]
        verifier, challenge = pkce()
        browser = Browser("alice")
        try:
            await browser.visit(authorize_url(a.base_url, client_id, challenge))
        finally:
            await browser.aclose()
        assert browser.result and "code" in browser.result, browser.pages
        form = {
            "grant_type": "authorization_code",
            "code": browser.result["code"],
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
        }
        replies = await asyncio.gather(
            *(http.post(f"{(a, b)[i % 2].base_url}/oauth/token", data=form) for i in range(RACERS))
        )
        statuses = sorted(r.status_code for r in replies)
        assert statuses == [200] + [400] * (RACERS - 1), [r.text for r in replies]
        assert all(r.json()["error"] == "invalid_grant" for r in replies if r.status_code == 400)
        # And once more, on B alone: still spent.
        late = await http.post(f"{b.base_url}/oauth/token", data=form)
        assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


@pytest.mark.gen_test(timeout=90)
async def test_redis_killed_fails_closed_for_oauth_then_recovers(replicas, redis_server):
    a, b = replicas
    tokens = await sign_in(a.base_url)
    assert await mcp_status(b.base_url, tokens["access_token"]) == 200
    redis_server.client().save()  # an RDB snapshot: what a persistent Redis comes back with
    redis_server.proc.kill()  # not a clean shutdown
    redis_server.proc.wait()
    redis_server.proc = None
    try:
        async with httpx2.AsyncClient(timeout=20) as http:
            for server in (a, b):
                reply = await http.post(
                    f"{server.base_url}/mcp",
                    json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                    headers={
                        "Authorization": f"Bearer {tokens['access_token']}",
                        "Accept": "application/json, text/event-stream",
                    },
                )
                assert reply.status_code == 503 and int(reply.headers["retry-after"]) >= 1
                assert "Traceback" not in reply.text
                token = await http.post(
                    f"{server.base_url}/oauth/token", data=refresh_form(tokens, a.base_url)
                )
                assert token.status_code == 503 and token.headers["retry-after"]
                assert token.json()["error"] == "temporarily_unavailable"
                registered = await register(http, server.base_url)
                assert registered.status_code == 503
                assert registered.json()["error"] == "temporarily_unavailable"
                page = await http.get(authorize_url(a.base_url, tokens["client_id"], "x" * 43))
                assert page.status_code == 503 and "Traceback" not in page.text
    finally:
        redis_server.start()
    # Back, with its data: the same token works on both again, without a restart.
    for server in (a, b):
        assert await eventually_status(server.base_url, tokens["access_token"], 200, 5) == 200
    # Logged when it went (A's OAuth store met it on /oauth/authorize, twice), not once per
    # request; no traceback.
    outages = [
        [json.loads(line).get("event") for line in s.lines if line.strip()].count(
            "oauth_store_unavailable"
        )
        for s in (a, b)
    ]
    assert outages[0] == 1 and outages[1] <= 1, outages
    assert not any("Traceback" in line for s in (a, b) for line in s.lines)


def test_a_replica_with_another_vault_key_refuses_to_start(replicas, tmp_path, redis_url):
    a, _ = replicas
    (tmp_path / "c").mkdir()
    env = replica_env(a.base_url, "http://127.0.0.1:9", redis_url, tmp_path / "c")
    env.update(
        OAUTH_ENCRYPTION_KEY="8wP6mH3Y2oKc9c0x4n9h3a1kq7m2z5v8r4t6y1u0i3o=",
        AUDIT_LOG_PATH=str(tmp_path / "c" / "audit.log"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "aegis_tornado", "--port", "0"],
        env=clean_env(**env),
        cwd=tmp_path / "c",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "OAUTH_ENCRYPTION_KEY" in last and "same key" in last
    assert "8wP6mH3Y" not in done.stderr + done.stdout and VAULT_KEY not in done.stderr


def audit_of(server: ServerProcess) -> list[dict]:
    """The audit file (written by a background writer: read after a short wait)."""
    time.sleep(0.3)
    return server.audit()


def audited(*servers: ServerProcess, event: str, within: float = 10.0) -> bool:
    """Whether one of the servers audited ``event`` (waiting for the background writer)."""
    deadline = time.monotonic() + within
    while True:
        if any(r["event"] == event for s in servers for r in s.audit()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def redis_dump(redis_server) -> str:
    """Every OAuth key and value in Redis, as text."""
    client = redis_server.client()
    parts = []
    for key in client.scan_iter(match="aegis:*"):
        kind = client.type(key).decode()
        read = {
            "string": client.get,
            "hash": client.hgetall,
            "set": client.smembers,
            "zset": lambda name: client.zrange(name, 0, -1),
        }[kind]
        value = read(key)
        parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)
