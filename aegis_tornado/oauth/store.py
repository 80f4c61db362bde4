"""The OAuth state in one SQLite file, used from one dedicated worker thread.

Every method but :meth:`OAuthStore.call` runs on that thread (oauthlib's validator calls them
synchronously, inside the same thread). One thread means one connection, no locking games, and
each read-modify-write (refresh rotation, reuse detection, single-use codes) is atomic. The event
loop only ever awaits :meth:`call`.

Nothing secret is stored in the clear: tokens, codes, client secrets, consent handles and
states are SHA-256 digests; users' Gitea tokens are encrypted by the vault before they get here.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing import TypeAlias

    from .redis_store import RedisOAuthStore

T = TypeVar("T")

#: Sign-ins in progress (consent shown, Gitea leg under way) kept at once.
MAX_TRANSACTIONS = 50_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    secret_digest TEXT,
    metadata TEXT NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    handle TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    binding TEXT NOT NULL,
    data TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    gitea_user_id INTEGER NOT NULL,
    gitea_login TEXT NOT NULL,
    resource TEXT NOT NULL,
    scopes TEXT NOT NULL,
    family TEXT NOT NULL,
    expires REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'active'
);
CREATE INDEX IF NOT EXISTS tokens_family ON tokens (family);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens (gitea_user_id);
CREATE TABLE IF NOT EXISTS gitea_tokens (
    gitea_user_id INTEGER PRIMARY KEY,
    gitea_login TEXT NOT NULL,
    sealed TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


class OAuthStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aegis-oauth-store")
        self._db: sqlite3.Connection | None = None
        self._writes = 0
        self._executor.submit(self._open).result()

    def _open(self) -> None:
        if self.path != ":memory:":
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            # The file holds encrypted tokens and digests: still nobody else's business.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None
        return self._db

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the store's thread and await its result."""
        return await asyncio.wrap_future(self._executor.submit(fn, *args))

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the store's thread and wait (command-line tools, no event loop)."""
        return self._executor.submit(fn, *args).result()

    def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        self._executor.submit(shut).result()
        self._executor.shutdown(wait=True)

    # --- clients ---------------------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        metadata: dict[str, Any],
        kind: str,
        secret_digest: str | None,
        limit: int | None = None,
    ) -> bool:
        """False (nothing added) when ``limit`` clients of this kind exist already."""
        if limit is not None and self.count_clients(kind) >= limit:
            return False
        self.db.execute(
            "INSERT OR REPLACE INTO clients VALUES (?, ?, ?, ?, ?)",
            (client_id, secret_digest, json.dumps(metadata), kind, time.time()),
        )
        return True

    def get_client(self, client_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM clients WHERE client_id = ?", (client_id,)).fetchone()
        if row is None:
            return None
        client = json.loads(row["metadata"])
        client.update(client_id=row["client_id"], kind=row["kind"])
        client["secret_digest"] = row["secret_digest"]
        return client

    def delete_client(self, client_id: str) -> None:
        self.db.execute("DELETE FROM clients WHERE client_id = ?", (client_id,))
        self.db.execute("UPDATE tokens SET state = 'revoked' WHERE client_id = ?", (client_id,))

    def list_clients(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT client_id FROM clients ORDER BY created").fetchall()
        return [c for c in (self.get_client(r["client_id"]) for r in rows) if c is not None]

    def count_clients(self, kind: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM clients WHERE kind = ?", (kind,)).fetchone()[0]

    # --- browser transactions (consent, upstream state) ------------------------------------

    def put_transaction(
        self, handle: str, kind: str, binding: str, data: dict[str, Any], ttl: float
    ) -> bool:
        """False when too many sign-ins are in progress (a flood of authorization requests)."""
        now = time.time()
        self.db.execute("DELETE FROM transactions WHERE expires < ?", (now,))
        count = self.db.execute("SELECT COUNT(*) FROM transactions").fetchone()[0]
        if count >= MAX_TRANSACTIONS:
            return False
        self.db.execute(
            "INSERT INTO transactions VALUES (?, ?, ?, ?, ?)",
            (handle, kind, binding, json.dumps(data), now + ttl),
        )
        return True

    def take_transaction(self, handle: str, kind: str) -> tuple[str, dict[str, Any]] | None:
        """The transaction's binding digest and data, deleted: every handle is single use."""
        row = self.db.execute(
            "SELECT * FROM transactions WHERE handle = ? AND kind = ?", (handle, kind)
        ).fetchone()
        if row is None:
            return None
        self.db.execute("DELETE FROM transactions WHERE handle = ?", (handle,))
        if row["expires"] < time.time():
            return None
        return row["binding"], json.loads(row["data"])

    # --- authorization codes ---------------------------------------------------------------

    def save_code(self, code: str, data: dict[str, Any], ttl: float) -> None:
        now = time.time()
        self.db.execute("DELETE FROM codes WHERE expires < ?", (now,))
        self.db.execute("INSERT INTO codes VALUES (?, ?, ?)", (code, json.dumps(data), now + ttl))

    def get_code(self, code: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM codes WHERE code = ?", (code,)).fetchone()
        if row is None or row["expires"] < time.time():
            return None
        return json.loads(row["data"])

    def take_code(self, code: str) -> dict[str, Any] | None:
        """The code's grant, deleted: a code is redeemed at most once, even when the exchange
        then fails (a wrong verifier burns it)."""
        data = self.get_code(code)
        self.delete_code(code)
        return data

    def delete_code(self, code: str) -> None:
        self.db.execute("DELETE FROM codes WHERE code = ?", (code,))

    # --- MCP tokens --------------------------------------------------------------------------

    def save_token(
        self,
        token: str,
        kind: str,
        *,
        client_id: str,
        gitea_user_id: int,
        gitea_login: str,
        resource: str,
        scopes: str,
        family: str,
        ttl: float,
    ) -> None:
        self._writes += 1
        if self._writes % 500 == 0:
            self.purge_expired_tokens()
        self.db.execute(
            "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active')",
            (
                token,
                kind,
                client_id,
                gitea_user_id,
                gitea_login,
                resource,
                scopes,
                family,
                time.time() + ttl,
            ),
        )

    def get_token(self, token: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM tokens WHERE token = ?", (token,)).fetchone()
        return dict(row) if row is not None else None

    def set_token_state(self, token: str, state: str) -> None:
        self.db.execute("UPDATE tokens SET state = ? WHERE token = ?", (state, token))

    def rotate_refresh_token(self, token: str) -> bool:
        """``active`` -> ``rotated``; False when it was no longer active (used already)."""
        return (
            self.db.execute(
                "UPDATE tokens SET state = 'rotated' WHERE token = ? AND state = 'active'",
                (token,),
            ).rowcount
            == 1
        )

    def revoke_family(self, family: str) -> int:
        return self.db.execute(
            "UPDATE tokens SET state = 'revoked' WHERE family = ? AND state != 'revoked'", (family,)
        ).rowcount

    def revoke_user(self, gitea_user_id: int) -> int:
        return self.db.execute(
            "UPDATE tokens SET state = 'revoked' WHERE gitea_user_id = ? AND state != 'revoked'",
            (gitea_user_id,),
        ).rowcount

    def revoke_login(self, gitea_login: str) -> int:
        return self.db.execute(
            "UPDATE tokens SET state = 'revoked' WHERE gitea_login = ? AND state != 'revoked'",
            (gitea_login,),
        ).rowcount

    def purge_expired_tokens(self) -> None:
        """Expired tokens kept a day (a late refresh-token replay is still recognised), then gone."""
        self.db.execute("DELETE FROM tokens WHERE expires < ?", (time.time() - 86400,))

    # --- users' Gitea tokens (sealed by the vault) -------------------------------------------

    def claim_vault_key(self, fingerprint: str) -> bool:
        """One process, one key (its setting or key file): nothing to agree on."""
        return True

    def put_gitea_tokens(self, gitea_user_id: int, login: str, sealed: str, expires: float) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO gitea_tokens VALUES (?, ?, ?, ?)",
            (gitea_user_id, login, sealed, expires),
        )

    def get_gitea_tokens(self, gitea_user_id: int) -> tuple[str, float] | None:
        row = self.db.execute(
            "SELECT sealed, expires FROM gitea_tokens WHERE gitea_user_id = ?", (gitea_user_id,)
        ).fetchone()
        return (row["sealed"], row["expires"]) if row is not None else None

    def delete_gitea_tokens(self, gitea_user_id: int) -> None:
        self.db.execute("DELETE FROM gitea_tokens WHERE gitea_user_id = ?", (gitea_user_id,))


if TYPE_CHECKING:
    #: The store the OAuth service uses: this file, or Redis with ``STATE_URL`` (chosen once,
    #: in ``aegis_tornado.assembly.build_oauth_store``).
    OAuthStateStore: TypeAlias = OAuthStore | RedisOAuthStore
