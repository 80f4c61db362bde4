"""Users' Gitea tokens: encrypted at rest, one set per Gitea user, refreshed once.

Gitea keeps one grant per (user, application) with one refresh counter, so two MCP clients of
the same user (ChatGPT and Claude) share one Gitea token set: storing one per client would let
each refresh invalidate the other's (reference §5.7). A refresh runs at most once at a time per
user (a lock; the second caller reads what the first stored), and the new pair is stored before
it is used.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from cryptography.fernet import Fernet, InvalidToken

from ..gitea.errors import GiteaUnavailable
from ..state.store import StateUnavailable
from .gitea_login import GiteaLogin, GiteaLoginError, GiteaTokens

if TYPE_CHECKING:
    from .store import OAuthStateStore

log = structlog.get_logger("aegis.oauth")

#: Refresh a Gitea token this many seconds before it expires.
REFRESH_MARGIN = 60.0


def load_or_create_key(configured: str | None, key_path: str) -> bytes:
    """The Fernet key: configured, or read from (or created as) a 0600 file."""
    if configured:
        return configured.encode()
    try:
        with open(key_path, "rb") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(os.path.abspath(key_path)), exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def key_fingerprint(key: bytes) -> str:
    """What replicas compare to agree on the key (in Redis): a digest, never the key."""
    return hashlib.sha256(b"aegis-vault-key-v1:" + key.strip()).hexdigest()[:32]


class GiteaTokenVault:
    def __init__(
        self,
        store: OAuthStateStore,
        login: GiteaLogin,
        key: bytes,
        on_revoke: Callable[[], None] | None = None,
        cache_ttl: float = 0.0,
        cache_size: int = 10_000,
    ) -> None:
        self._store = store
        self._login = login
        self._fernet = Fernet(key)
        self.fingerprint = key_fingerprint(key)
        #: Called when the vault revokes a user's tokens (the service's token cache forgets).
        self._on_revoke = on_revoke
        self._locks: dict[int, asyncio.Lock] = {}
        #: user id -> (monotonic time it may be used until, the opened tokens): a tool call's
        #: Gitea request does not hop to the store's thread and decrypt again for ``cache_ttl``
        #: seconds (the same bound as the service's verified-token cache, which is what makes an
        #: OAuth bearer cost what an API key costs). Safe to serve stale across replicas: Gitea's
        #: access tokens stay valid until they expire, and a token near its expiry is re-read
        #: from the store before it is refreshed (another replica may have refreshed it).
        self.cache_ttl = cache_ttl
        self._cache_size = cache_size
        self._opened: dict[int, tuple[float, GiteaTokens]] = {}
        #: Gitea refreshes performed (tests assert single-flight with it).
        self.refreshes = 0

    def _seal(self, tokens: GiteaTokens) -> str:
        return self._fernet.encrypt(tokens.to_json().encode()).decode()

    def _open(self, sealed: str) -> GiteaTokens:
        return GiteaTokens.from_json(self._fernet.decrypt(sealed.encode()).decode())

    async def put(self, user_id: int, login: str, tokens: GiteaTokens) -> None:
        await self._store.call(
            self._store.put_gitea_tokens, user_id, login, self._seal(tokens), tokens.expires_at
        )
        self._opened.pop(user_id, None)  # after the write: a read meanwhile may have cached

    async def _get(self, user_id: int, *, cached: bool = True) -> GiteaTokens | None:
        if cached:
            entry = self._opened.get(user_id)
            if entry is not None and entry[0] > time.monotonic():
                return entry[1]
        row = await self._store.call(self._store.get_gitea_tokens, user_id)
        if row is None:
            self._opened.pop(user_id, None)
            return None
        try:
            tokens = self._open(row[0])
        except (InvalidToken, ValueError):
            log.error("oauth.gitea_tokens_unreadable", gitea_user_id=user_id)
            return None
        if self.cache_ttl > 0:
            if user_id not in self._opened and len(self._opened) >= self._cache_size:
                del self._opened[next(iter(self._opened))]  # the oldest entry
            self._opened[user_id] = (time.monotonic() + self.cache_ttl, tokens)
        return tokens

    async def access_token(self, user_id: int, login: str) -> str | None:
        """The user's current Gitea access token, refreshed when close to expiry; None when the
        user must sign in again (the grant is gone)."""
        tokens = await self._get(user_id)
        if tokens is None:
            return None
        if tokens.expires_at - REFRESH_MARGIN > time.time():
            return tokens.access_token
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            # From the store: another call (or replica) may have refreshed meanwhile.
            tokens = await self._get(user_id, cached=False)
            if tokens is None:
                return None
            if tokens.expires_at - REFRESH_MARGIN > time.time():
                return tokens.access_token
            try:
                fresh = await self._login.refresh(tokens.refresh_token)
            except GiteaLoginError as error:
                if error.grant_gone:
                    log.warning("oauth.gitea_grant_gone", gitea_user=login, error=error.error)
                    await self.forget(user_id)
                    return None
                raise
            self.refreshes += 1
            await self.put(user_id, login, fresh)
            log.info("oauth.gitea_token_refreshed", gitea_user=login)
            return fresh.access_token

    async def forget(self, user_id: int) -> None:
        """Drop the user's Gitea tokens and revoke every MCP token of theirs."""

        def drop() -> None:
            self._store.delete_gitea_tokens(user_id)
            self._store.revoke_user(user_id)

        self._opened.pop(user_id, None)
        await self._store.call(drop)
        if self._on_revoke is not None:
            self._on_revoke()


@dataclass
class UserGiteaCredentials:
    """The :class:`~aegis_tornado.gitea.credentials.CredentialSource` of an OAuth caller."""

    vault: GiteaTokenVault
    user_id: int
    login: str

    @property
    def identity(self) -> str:
        return f"gitea-user:{self.user_id}"

    async def token(self) -> str:
        try:
            token = await self.vault.access_token(self.user_id, self.login)
        except StateUnavailable:
            # Not "your grant is gone, sign in again": the store will be back.
            raise GiteaUnavailable(
                "Your Gitea sign-in cannot be read right now (the OAuth state store is "
                "unavailable); try again shortly."
            ) from None
        if token is None:
            raise GiteaGrantGone()
        return token

    async def rejected(self) -> None:
        await self.vault.forget(self.user_id)


class GiteaGrantGone(Exception):
    """The user's Gitea grant was revoked: their MCP tokens are revoked too; sign in again."""
