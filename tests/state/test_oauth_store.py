"""The Redis OAuth store against a real redis-server: two store instances stand for two
replicas; threads released together stand for requests arriving at the same instant."""

from __future__ import annotations

import threading
from functools import partial

import pytest

from aegis_tornado.oauth import admin
from aegis_tornado.oauth.redis_store import RedisOAuthStore, VaultKeyMismatch
from aegis_tornado.oauth.tokens import digest

TOKEN = dict(
    client_id="dcr_x",
    gitea_user_id=7,
    gitea_login="alice",
    resource="https://mcp.example/mcp",
    scopes="gitea:read",
)


@pytest.fixture
def stores(redis_url):
    pair = [RedisOAuthStore(redis_url, refresh_ttl=3600) for _ in range(2)]
    yield pair
    for store in pair:
        store.close()


def race(*calls):
    """Run the calls at once (one thread each); their results, in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_a_code_taken_at_once_by_two_replicas_is_taken_once(stores):
    a, b = stores
    for i in range(100):
        code = digest(f"code-{i}")
        a.call_sync(a.save_code, code, {"client_id": "dcr_x"}, 60)
        results = race(partial(a.take_code, code), partial(b.take_code, code))
        assert sum(r is not None for r in results) == 1


def test_a_refresh_token_rotated_at_once_by_two_replicas_rotates_once(stores, redis_server):
    a, b = stores
    for i in range(100):
        token = digest(f"refresh-{i}")
        a.call_sync(partial(a.save_token, token, "refresh", family=f"f{i}", ttl=600, **TOKEN))
        results = race(
            partial(a.rotate_refresh_token, token), partial(b.rotate_refresh_token, token)
        )
        assert sorted(results) == [False, True]
    # Saved for its lifetime (600 s) plus a day; once rotated, kept a day at most.
    assert 0 < redis_server.client().pttl("aegis:oauth:token:" + token) <= 86_400_000


def test_a_token_saved_into_a_revoked_family_is_revoked(stores):
    a, b = stores
    a.call_sync(partial(a.save_token, "t1", "refresh", family="fam", ttl=600, **TOKEN))
    assert b.call_sync(b.revoke_family, "fam") == 1
    # The winner of a rotation saves its new pair a moment after the loser revoked the family.
    a.call_sync(partial(a.save_token, "t2", "access", family="fam", ttl=60, **TOKEN))
    assert b.call_sync(b.get_token, "t1")["state"] == "revoked"
    assert b.call_sync(b.get_token, "t2")["state"] == "revoked"


def test_revoke_by_user_login_and_client_reach_every_family(stores):
    a, b = stores
    for family in ("f1", "f2"):
        a.call_sync(partial(a.save_token, family + "-at", "access", family=family, ttl=60, **TOKEN))
    assert b.call_sync(b.revoke_login, "alice") == 2
    assert b.call_sync(b.revoke_login, "alice") == 0
    a.call_sync(partial(a.save_token, "f3-at", "access", family="f3", ttl=60, **TOKEN))
    assert b.call_sync(b.revoke_user, 7) == 1
    a.call_sync(partial(a.save_token, "f4-at", "access", family="f4", ttl=60, **TOKEN))
    a.call_sync(a.add_client, "dcr_x", {"redirect_uris": []}, "dcr", None)
    b.call_sync(b.delete_client, "dcr_x")
    assert a.call_sync(a.get_token, "f4-at")["state"] == "revoked"
    assert a.call_sync(a.get_client, "dcr_x") is None


def test_every_key_carries_a_ttl_but_a_static_clients(stores, redis_server):
    a, _ = stores
    a.call_sync(a.add_client, "dcr_x", {"redirect_uris": []}, "dcr", None)
    a.call_sync(a.add_client, "static_y", {"redirect_uris": []}, "static", digest("s"))
    a.call_sync(lambda: a.save_token(digest("at"), "access", family="fam", ttl=60, **TOKEN))
    a.call_sync(a.save_code, digest("code"), {"client_id": "dcr_x"}, 60)
    assert a.call_sync(a.put_transaction, digest("h"), "consent", digest("b"), {"q": 1}, 600)
    a.call_sync(a.claim_vault_key, "fingerprint-1")
    a.call_sync(a.put_gitea_tokens, 7, "alice", "sealed-blob", 1e10)
    a.call_sync(a.revoke_family, "fam")
    client = redis_server.client()
    keys = {k.decode(): client.pttl(k) for k in client.scan_iter(match="*")}
    assert all(k.startswith("aegis:oauth:") for k in keys)
    static = "aegis:oauth:client:" + digest("static_y")
    assert keys.pop(static) == -1  # the operator's, on purpose (docs/SCALING.md)
    assert all(ttl > 0 for ttl in keys.values()), keys
    kinds = {k.split(":")[2] for k in keys}
    assert kinds == {
        "client", "clients", "token", "family", "family-revoked", "by-user", "by-login",
        "by-client", "code", "tx", "transactions", "vault-key", "gitea",
    }  # fmt: skip
    # Key names hold digests and ids, never the login or a secret.
    assert not any("alice" in k or "static_y" in k for k in keys)
    # Taken once: the transaction and its index entry are gone.
    assert a.call_sync(a.take_transaction, digest("h"), "consent") is not None
    assert a.call_sync(a.take_transaction, digest("h"), "consent") is None
    assert not client.exists("aegis:oauth:transactions")


def test_a_replica_with_another_vault_key_can_neither_seal_nor_unseal(stores):
    a, b = stores
    assert a.call_sync(a.claim_vault_key, "fingerprint-1")
    a.call_sync(a.put_gitea_tokens, 7, "alice", "sealed-blob", 1e10)
    assert not b.call_sync(b.claim_vault_key, "fingerprint-2")
    with pytest.raises(VaultKeyMismatch):
        b.call_sync(b.get_gitea_tokens, 7)
    with pytest.raises(VaultKeyMismatch):
        b.call_sync(b.put_gitea_tokens, 7, "alice", "other-blob", 1e10)
    assert a.call_sync(a.get_gitea_tokens, 7) == ("sealed-blob", 1e10)


def test_the_admin_command_manages_static_clients_in_redis(redis_url, monkeypatch, capsys, stores):
    monkeypatch.setenv("STATE_URL", redis_url)
    monkeypatch.setenv("MCP_API_KEYS", "a" * 64)
    monkeypatch.setenv("GITEA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GITEA_TOKEN", "bot")
    assert admin.main(["add-client", "--name", "ChatGPT", "--redirect-uri", "https://x/cb"]) == 0
    client_id = capsys.readouterr().out.split()[1]
    seen = stores[0].call_sync(stores[0].get_client, client_id)  # what every replica sees
    assert seen["kind"] == "static" and seen["secret_digest"]
    assert admin.main(["list-clients"]) == 0
    assert client_id in capsys.readouterr().out
    assert admin.main(["delete-client", client_id]) == 0
    assert stores[0].call_sync(stores[0].get_client, client_id) is None
    monkeypatch.setenv("STATE_URL", "redis://127.0.0.1:9/0")  # nothing listens there
    assert admin.main(["list-clients"]) == 2
    assert "cannot be reached" in capsys.readouterr().err


def test_the_registration_bound_holds_across_replicas_registering_at_once(stores):
    a, b = stores
    # Each replica's store works on its one thread: six calls queued on each, racing the other.
    calls = [
        partial(s.call_sync, s.add_client, f"dcr_{i}", {"redirect_uris": []}, "dcr", None, 5)
        for i, s in enumerate([a, b] * 6)
    ]
    assert sum(race(*calls)) == 5
    assert a.call_sync(a.count_clients, "dcr") == 5
    # Static clients (the operator's) are not counted against it.
    assert b.call_sync(b.add_client, "static_z", {"redirect_uris": []}, "static", "d", 5)


@pytest.mark.gen_test(timeout=30)
async def test_a_users_gitea_token_unreadable_while_redis_is_down_is_retryable(
    stores, redis_server
):
    """Not "your grant is gone": the tool answers Gitea-unavailable, nothing is revoked."""
    from cryptography.fernet import Fernet

    from aegis_tornado.gitea.errors import GiteaUnavailable
    from aegis_tornado.oauth.vault import GiteaTokenVault, UserGiteaCredentials

    store = stores[0]
    revoked = []
    vault = GiteaTokenVault(store, None, Fernet.generate_key(), lambda: revoked.append(1))
    redis_server.stop()
    try:
        with pytest.raises(GiteaUnavailable):
            await UserGiteaCredentials(vault, 7, "alice").token()
    finally:
        redis_server.start()
    assert revoked == []


def test_oauth_with_state_url_needs_one_configured_vault_key(monkeypatch):
    from aegis_tornado.settings import ConfigError, load_settings

    for name, value in {
        "STATE_URL": "redis://127.0.0.1:6379/0",
        "OAUTH_ENABLED": "true",
        "PUBLIC_URL": "https://mcp.example",
        "GITEA_URL": "http://127.0.0.1:9",
        "GITEA_TOKEN": "bot",
        "GITEA_OAUTH_CLIENT_ID": "id",
        "GITEA_OAUTH_CLIENT_SECRET": "secret",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="^OAUTH_ENCRYPTION_KEY: required with STATE_URL"):
        load_settings(None)
    monkeypatch.setenv("OAUTH_ENCRYPTION_KEY", "q0kXW1sQ2cC0mJ3b8k1lHcV7o9oR2yJ7Jx3m6l2mYbE=")
    assert load_settings(None).state_url is not None


@pytest.mark.gen_test(timeout=30)
async def test_the_oauth_rates_per_ip_are_shared_by_replicas(redis_url, redis_server):
    from aegis_tornado.oauth.limits import AttemptRate
    from aegis_tornado.state.store import StateStore

    replicas = [StateStore(redis_url) for _ in range(2)]
    try:
        rates = [AttemptRate("register", 3, state) for state in replicas]
        taken = [await rates[i % 2].take("203.0.113.9") for i in range(4)]
        assert taken[:3] == [None, None, None] and 55 <= taken[3] <= 60
        assert await rates[1].take("203.0.113.10") is None  # another client
        key = "aegis:oauth:rate:register:203.0.113.9"
        assert 0 < redis_server.client().pttl(key) <= 60_000
        # Not failed authentications: the gate's limiter keys are untouched.
        assert not list(redis_server.client().scan_iter(match="aegis:authfail:*"))
    finally:
        for state in replicas:
            await state.close()
