"""The vault's cache of opened Gitea tokens: what makes an OAuth caller's Gitea request cost
no store round trip, and the cases where it must read the store anyway."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import Fernet

from aegis_tornado.oauth.gitea_login import GiteaTokens
from aegis_tornado.oauth.store import OAuthStore
from aegis_tornado.oauth.vault import REFRESH_MARGIN, GiteaTokenVault


@pytest.fixture
def store():
    opened = OAuthStore(":memory:")
    yield opened
    opened.close()


def fresh_tokens(access: str, lifetime: float = 3600) -> GiteaTokens:
    return GiteaTokens(access, "refresh-" + access, time.time() + lifetime)


@pytest.mark.gen_test
async def test_within_the_ttl_the_tokens_come_from_the_cache(store):
    vault = GiteaTokenVault(store, None, Fernet.generate_key(), cache_ttl=60)
    await vault.put(7, "alice", fresh_tokens("gta-1"))
    assert await vault.access_token(7, "alice") == "gta-1"
    # Gone from the store (another replica dropped them): this process still has them cached.
    await store.call(store.delete_gitea_tokens, 7)
    assert await vault.access_token(7, "alice") == "gta-1"


@pytest.mark.gen_test
async def test_without_a_ttl_every_call_reads_the_store(store):
    vault = GiteaTokenVault(store, None, Fernet.generate_key(), cache_ttl=0)
    await vault.put(7, "alice", fresh_tokens("gta-1"))
    assert await vault.access_token(7, "alice") == "gta-1"
    await store.call(store.delete_gitea_tokens, 7)
    assert await vault.access_token(7, "alice") is None


@pytest.mark.gen_test
async def test_put_and_forget_replace_what_is_cached(store):
    revoked = []
    vault = GiteaTokenVault(
        store, None, Fernet.generate_key(), lambda: revoked.append(1), cache_ttl=60
    )
    await vault.put(7, "alice", fresh_tokens("gta-1"))
    assert await vault.access_token(7, "alice") == "gta-1"
    await vault.put(7, "alice", fresh_tokens("gta-2"))  # a new sign-in
    assert await vault.access_token(7, "alice") == "gta-2"
    await vault.forget(7)
    assert revoked == [1]
    assert await vault.access_token(7, "alice") is None


@pytest.mark.gen_test
async def test_a_token_near_its_expiry_is_read_from_the_store_before_any_refresh(store):
    """Another replica refreshed it: the store has the new tokens, the cache the old ones. The
    stale copy must not be refreshed (that would spend the refresh token a second time)."""
    key = Fernet.generate_key()
    vault = GiteaTokenVault(store, None, key, cache_ttl=60)
    await vault.put(7, "alice", fresh_tokens("gta-old", lifetime=REFRESH_MARGIN + 0.5))
    assert await vault.access_token(7, "alice") == "gta-old"
    other_replica = GiteaTokenVault(store, None, key)
    await other_replica.put(7, "alice", fresh_tokens("gta-new"))
    time.sleep(0.6)  # now within the refresh margin
    # vault._login is None: a refresh attempt would raise. The store's copy is fresh: no refresh.
    assert await vault.access_token(7, "alice") == "gta-new"
    assert vault.refreshes == 0


@pytest.mark.gen_test
async def test_the_cache_is_bounded(store):
    vault = GiteaTokenVault(store, None, Fernet.generate_key(), cache_ttl=60, cache_size=3)
    for user in range(5):
        await vault.put(user, f"user{user}", fresh_tokens(f"gta-{user}"))
        assert await vault.access_token(user, f"user{user}") == f"gta-{user}"
    assert len(vault._opened) == 3
