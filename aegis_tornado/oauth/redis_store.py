"""The OAuth state in Redis (``STATE_URL``): the same interface as the SQLite
:class:`~aegis_tornado.oauth.store.OAuthStore`, shared by every replica.

Why a synchronous redis-py client on one worker thread: oauthlib's validator is synchronous and
runs inside the oauthlib call on the store's thread, exactly as with SQLite; so the validator,
the service and the vault stay the same for both stores, and the event loop only ever awaits
:meth:`RedisOAuthStore.call`. What one SQLite thread made atomic, Redis makes atomic across
replicas instead: every read-modify-write is one Lua script or one atomic command.

* codes and browser transactions are taken with ``GETDEL`` (a second replica finds nothing);
* a refresh token is rotated by a compare-and-set script (``active`` -> ``rotated``): of two
  replicas refreshing the same token at once, one wins and the other sees a reuse and revokes
  the family; a family revoked leaves a marker, so tokens saved into it afterwards (by the
  winner, a millisecond later) are saved revoked;
* revocation by family, user, login or client walks index sets (of families) kept with TTLs.

Keys (all under ``aegis:oauth:``, ``<d>`` = a SHA-256 hex digest, never a secret):

=============================  ==================================================  ============
``client:<d of client id>``    JSON: metadata, kind, secret digest, created          see below
``clients:dcr``/``clients:cimd``  sorted set of those clients, by expiry (the count)  client TTL
``tx:<kind>:<d>``              a browser transaction (consent, Gitea leg)             its TTL
``transactions``               sorted set of transactions by expiry (the bound)       10 min
``code:<d>``                   an authorization code's grant                          60 s
``token:<d>``                  hash: one access or refresh token's record             see below
``family:<family>``            set of the token digests of one refresh family         longest TTL
``family-revoked:<family>``    marker: tokens saved into this family are revoked      longest TTL
``by-user:<id>``, ``by-login:<d>``, ``by-client:<d>``  sets of families               longest TTL
``gitea:<user id>``            hash: the user's Fernet-sealed Gitea tokens            longest TTL
``vault-key``                  the vault key's fingerprint (never the key)            longest TTL
=============================  ==================================================  ============

"Longest TTL" is the refresh-token lifetime plus a day. An access token lives its lifetime;
a refresh token its lifetime plus a day, cut to a day once rotated (``KEEP_EXPIRED``). Clients registered
dynamically (DCR) and CIMD clients live as long, renewed each time a token is issued to them:
a client unused for longer than a refresh token lives has no token left and is forgotten (its
MCP client registers again). Static clients (``oauth.admin add-client``) carry no TTL: only
the operator creates them, one at a time, and an expiring static client would silently break
the connector configured with it; ``delete-client`` removes them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog
from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from ..state.store import NAMESPACE, StateUnavailable
from .store import MAX_TRANSACTIONS
from .tokens import digest

log = structlog.get_logger("aegis.oauth")

T = TypeVar("T")

PREFIX = NAMESPACE + "oauth:"
#: Refresh tokens are kept this long past their end, and rotated ones this long past their
#: rotation: a replay within it is recognised as a reuse (and revokes the family); a later one
#: is refused as unknown. (SQLite keeps a rotated token until its own end plus this; in Redis
#: that would cost one record per refresh for a whole refresh-token lifetime.)
KEEP_EXPIRED = 86400.0
#: After a failed command, further calls fail at once for this long (no queue of doomed calls
#: piling up behind a dead or hung Redis on the store's one thread).
BACKOFF = 1.0

# KEYS: token, family set, family-revoked marker, by-user, by-login, by-client, gitea tokens,
#       client, clients:dcr, clients:cimd
# ARGV: 1 kind, 2 client_id, 3 user id, 4 login, 5 resource, 6 scopes, 7 family, 8 expires,
#       9 token ttl ms, 10 token digest, 11 index ttl ms, 12 token key prefix,
#       13 client ttl ms, 14 client digest
_SAVE_TOKEN = """
local state = 'active'
if redis.call('EXISTS', KEYS[3]) == 1 then state = 'revoked' end
redis.call('HSET', KEYS[1], 'kind', ARGV[1], 'client_id', ARGV[2], 'gitea_user_id', ARGV[3],
  'gitea_login', ARGV[4], 'resource', ARGV[5], 'scopes', ARGV[6], 'family', ARGV[7],
  'expires', ARGV[8], 'state', state)
redis.call('PEXPIRE', KEYS[1], ARGV[9])
redis.call('SADD', KEYS[2], ARGV[10])
if redis.call('SCARD', KEYS[2]) > 64 then
  for _, d in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if redis.call('EXISTS', ARGV[12] .. d) == 0 then redis.call('SREM', KEYS[2], d) end
  end
end
for i = 4, 6 do redis.call('SADD', KEYS[i], ARGV[7]) end
local keep = tonumber(ARGV[11])
for i = 2, 6 do
  if redis.call('PTTL', KEYS[i]) < keep then redis.call('PEXPIRE', KEYS[i], keep) end
end
if redis.call('PTTL', KEYS[7]) > 0 then redis.call('PEXPIRE', KEYS[7], keep) end
if redis.call('PTTL', KEYS[8]) > 0 then
  local t = redis.call('TIME')
  local until_ms = tonumber(t[1]) * 1000 + tonumber(ARGV[13])
  redis.call('PEXPIRE', KEYS[8], ARGV[13])
  for i = 9, 10 do
    redis.call('ZADD', KEYS[i], 'XX', until_ms, ARGV[14])
    if redis.call('PTTL', KEYS[i]) > 0 and redis.call('PTTL', KEYS[i]) < tonumber(ARGV[13]) then
      redis.call('PEXPIRE', KEYS[i], ARGV[13])
    end
  end
end
return state
"""

# Revoke every token of the families named (mode "family": ARGV[4] is one family) or listed in
# an index set (mode "index": ARGV[4] is the set's key); each family keeps a marker.
# ARGV: 1 key prefix, 2 default marker ttl ms, 3 mode, 4 family or index key
_REVOKE = """
local prefix = ARGV[1]
local families
if ARGV[3] == 'family' then families = {ARGV[4]}
else families = redis.call('SMEMBERS', ARGV[4]) end
local revoked = 0
for _, family in ipairs(families) do
  local members = prefix .. 'family:' .. family
  for _, d in ipairs(redis.call('SMEMBERS', members)) do
    local k = prefix .. 'token:' .. d
    local state = redis.call('HGET', k, 'state')
    if state and state ~= 'revoked' then
      redis.call('HSET', k, 'state', 'revoked')
      revoked = revoked + 1
    end
  end
  local ttl = redis.call('PTTL', members)
  if ttl < 0 then ttl = tonumber(ARGV[2]) end
  redis.call('SET', prefix .. 'family-revoked:' .. family, '1', 'PX', ttl)
end
return revoked
"""

# Compare-and-set on one token's state; 1 when it was ARGV[1] and is now ARGV[2]. The token
# is then kept at most ARGV[3] ms more (long enough to recognise a replay as a reuse).
_SWAP_STATE = """
if redis.call('HGET', KEYS[1], 'state') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', ARGV[2])
  if redis.call('PTTL', KEYS[1]) > tonumber(ARGV[3]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
  return 1
end
return 0
"""

# Sets a field of an existing token only: HSET on a missing key would create it without a TTL.
_SET_STATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'state', ARGV[1]) end
return 0
"""

# KEYS: transaction, transactions index. ARGV: value, ttl ms, max, member.
_PUT_TRANSACTION = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[4])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
"""

# KEYS: transaction, transactions index. ARGV: member.
_TAKE_TRANSACTION = """
local value = redis.call('GETDEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return value
"""

# KEYS: client, clients:<kind> index (absent for static clients).
# ARGV: value, ttl ms (0: none), member, limit (0: none). 0 when the limit is reached.
_ADD_CLIENT = """
if tonumber(ARGV[2]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local limit = tonumber(ARGV[4])
if limit > 0 and redis.call('ZCARD', KEYS[2]) >= limit
   and not redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
"""

# KEYS: gitea tokens, vault-key fingerprint. ARGV: fingerprint, sealed, login, expires, ttl ms.
# Refuses (0) when the replicas' vault key is not this one: nothing sealed with another key.
_PUT_GITEA = """
local fp = redis.call('GET', KEYS[2])
if fp and fp ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[5])
redis.call('HSET', KEYS[1], 'login', ARGV[3], 'sealed', ARGV[2], 'expires', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS: gitea tokens, vault-key fingerprint. ARGV: fingerprint.
_GET_GITEA = """
local fp = redis.call('GET', KEYS[2])
if fp and fp ~= ARGV[1] then return {0} end
local sealed = redis.call('HGET', KEYS[1], 'sealed')
if not sealed then return {1} end
return {1, sealed, redis.call('HGET', KEYS[1], 'expires')}
"""

# KEYS: vault-key. ARGV: fingerprint, ttl ms. 1 when the key is this replica's (or was unset).
_CLAIM_VAULT_KEY = """
local fp = redis.call('GET', KEYS[1])
if fp and fp ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class VaultKeyMismatch(StateUnavailable):
    """The sealed Gitea tokens in Redis were sealed with another key than this replica's:
    refused (503) rather than unreadable tokens taken for revoked grants."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisOAuthStore:
    def __init__(self, url: str, *, refresh_ttl: float, timeout: float = 1.0) -> None:
        self.redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
            max_connections=4,
            health_check_interval=30,
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aegis-oauth-redis")
        #: Index sets, revocation markers and sealed Gitea tokens outlive every token.
        self.keep_ms = int((refresh_ttl + KEEP_EXPIRED) * 1000)
        #: DCR and CIMD clients: as long as a refresh token issued to them, renewed on issuance.
        self.client_ttl_ms = self.keep_ms
        #: A request waits at most this long for the store before it is refused (503).
        self.deadline = 2 * timeout
        self.available: bool | None = None
        self._failed_at = -BACKOFF
        self._vault_fingerprint = ""
        self._mismatch_logged = False
        self._save_token = self.redis.register_script(_SAVE_TOKEN)
        self._revoke = self.redis.register_script(_REVOKE)
        self._swap_state = self.redis.register_script(_SWAP_STATE)
        self._set_state = self.redis.register_script(_SET_STATE)
        self._put_tx = self.redis.register_script(_PUT_TRANSACTION)
        self._take_tx = self.redis.register_script(_TAKE_TRANSACTION)
        self._add_client = self.redis.register_script(_ADD_CLIENT)
        self._put_gitea = self.redis.register_script(_PUT_GITEA)
        self._get_gitea = self.redis.register_script(_GET_GITEA)
        self._claim_vault_key = self.redis.register_script(_CLAIM_VAULT_KEY)

    # --- the thread and availability --------------------------------------------------------

    def _mark(self, available: bool) -> None:
        """Log transitions only: a dead Redis must not flood the log with a line a request."""
        if available != self.available:
            if available:
                log.info("oauth_store_available")
            else:
                log.error("oauth_store_unavailable")
        self.available = available

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the store's thread; ``StateUnavailable`` when Redis cannot be
        reached within ``deadline`` seconds (or failed less than ``BACKOFF`` seconds ago)."""
        if time.monotonic() - self._failed_at < BACKOFF:
            raise StateUnavailable()
        future = asyncio.wrap_future(self._executor.submit(fn, *args))
        try:
            result = await asyncio.wait_for(future, self.deadline)
        except (RedisError, OSError, asyncio.TimeoutError):
            self._failed_at = time.monotonic()
            self._mark(False)
            raise StateUnavailable() from None
        self._mark(True)
        return result

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the store's thread and wait (command-line tools, no event loop)."""
        return self._executor.submit(fn, *args).result()

    def close(self) -> None:
        self._executor.submit(self.redis.close).result()
        self._executor.shutdown(wait=True)

    @staticmethod
    def key(*parts: str) -> str:
        return PREFIX + ":".join(parts)

    # --- clients ---------------------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        metadata: dict[str, Any],
        kind: str,
        secret_digest: str | None,
        limit: int | None = None,
    ) -> bool:
        """False (nothing added) when ``limit`` live clients of this kind exist already: the
        count and the addition in one script, so replicas cannot overshoot it together."""
        member = digest(client_id)
        value = json.dumps(
            {
                "client_id": client_id,
                "metadata": metadata,
                "kind": kind,
                "secret_digest": secret_digest,
                "created": time.time(),
            }
        )
        if kind == "static":
            keys, ttl = [self.key("client", member)], 0
        else:
            keys, ttl = [self.key("client", member), self.key("clients", kind)], self.client_ttl_ms
        return bool(self._add_client(keys=keys, args=[value, ttl, member, limit or 0]))

    @staticmethod
    def _client_from(raw: Any) -> dict[str, Any]:
        record = json.loads(raw)
        client = dict(record["metadata"])
        client.update(client_id=record["client_id"], kind=record["kind"])
        client["secret_digest"] = record["secret_digest"]
        client["created"] = record["created"]
        return client

    def get_client(self, client_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(self.key("client", digest(client_id)))
        return self._client_from(raw) if raw is not None else None

    def delete_client(self, client_id: str) -> None:
        member = digest(client_id)
        self.redis.delete(self.key("client", member))
        for kind in ("dcr", "cimd"):
            self.redis.zrem(self.key("clients", kind), member)
        self._revoke(args=[PREFIX, self.keep_ms, "index", self.key("by-client", member)])

    def list_clients(self) -> list[dict[str, Any]]:
        clients = []
        for name in self.redis.scan_iter(match=self.key("client", "*"), count=500):
            raw = self.redis.get(name)
            if raw is not None:
                clients.append(self._client_from(raw))
        return sorted(clients, key=lambda c: c["created"])

    def count_clients(self, kind: str) -> int:
        """Live clients of a kind registered dynamically (``dcr``, ``cimd``)."""
        index = self.key("clients", kind)
        self.redis.zremrangebyscore(index, "-inf", time.time() * 1000)
        return int(self.redis.zcard(index))

    # --- browser transactions (consent, upstream state) ------------------------------------

    def put_transaction(
        self, handle: str, kind: str, binding: str, data: dict[str, Any], ttl: float
    ) -> bool:
        """False when too many sign-ins are in progress (a flood of authorization requests)."""
        value = json.dumps({"binding": binding, "data": data})
        stored = self._put_tx(
            keys=[self.key("tx", kind, handle), self.key("transactions")],
            args=[value, int(ttl * 1000), MAX_TRANSACTIONS, f"{kind}:{handle}"],
        )
        return bool(stored)

    def take_transaction(self, handle: str, kind: str) -> tuple[str, dict[str, Any]] | None:
        """The transaction's binding digest and data, deleted: every handle is single use."""
        raw = self._take_tx(
            keys=[self.key("tx", kind, handle), self.key("transactions")],
            args=[f"{kind}:{handle}"],
        )
        if raw is None:
            return None
        record = json.loads(raw)
        return record["binding"], record["data"]

    # --- authorization codes ---------------------------------------------------------------

    def save_code(self, code: str, data: dict[str, Any], ttl: float) -> None:
        self.redis.set(self.key("code", code), json.dumps(data), px=max(1, int(ttl * 1000)))

    def get_code(self, code: str) -> dict[str, Any] | None:
        raw = self.redis.get(self.key("code", code))
        return json.loads(raw) if raw is not None else None

    def take_code(self, code: str) -> dict[str, Any] | None:
        """The code's grant, deleted in the same command: of two replicas redeeming one code
        at once, one gets it."""
        raw = self.redis.getdel(self.key("code", code))
        return json.loads(raw) if raw is not None else None

    def delete_code(self, code: str) -> None:
        self.redis.delete(self.key("code", code))

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
        client = digest(client_id)
        self._save_token(
            keys=[
                self.key("token", token),
                self.key("family", family),
                self.key("family-revoked", family),
                self.key("by-user", str(gitea_user_id)),
                self.key("by-login", digest(gitea_login)),
                self.key("by-client", client),
                self.key("gitea", str(gitea_user_id)),
                self.key("client", client),
                self.key("clients", "dcr"),
                self.key("clients", "cimd"),
            ],
            args=[
                kind,
                client_id,
                gitea_user_id,
                gitea_login,
                resource,
                scopes,
                family,
                repr(time.time() + ttl),
                # An expired access token is of no use to anyone; a refresh token is kept a
                # day past its end so that a late replay is still recognised as a reuse.
                int((ttl + (KEEP_EXPIRED if kind == "refresh" else 0)) * 1000),
                token,
                self.keep_ms,
                self.key("token", ""),
                self.client_ttl_ms,
                client,
            ],
        )

    def get_token(self, token: str) -> dict[str, Any] | None:
        raw = self.redis.hgetall(self.key("token", token))
        if not raw:
            return None
        row: dict[str, Any] = {_text(k): _text(v) for k, v in raw.items()}
        row["token"] = token
        row["gitea_user_id"] = int(row["gitea_user_id"])
        row["expires"] = float(row["expires"])
        return row

    def set_token_state(self, token: str, state: str) -> None:
        self._set_state(keys=[self.key("token", token)], args=[state])

    def rotate_refresh_token(self, token: str) -> bool:
        """``active`` -> ``rotated`` atomically; False when it was no longer active (used
        already, maybe at the same instant on another replica)."""
        keep = int(KEEP_EXPIRED * 1000)
        swapped = self._swap_state(
            keys=[self.key("token", token)], args=["active", "rotated", keep]
        )
        return bool(swapped)

    def revoke_family(self, family: str) -> int:
        return int(self._revoke(args=[PREFIX, self.keep_ms, "family", family]))

    def revoke_user(self, gitea_user_id: int) -> int:
        index = self.key("by-user", str(gitea_user_id))
        return int(self._revoke(args=[PREFIX, self.keep_ms, "index", index]))

    def revoke_login(self, gitea_login: str) -> int:
        index = self.key("by-login", digest(gitea_login))
        return int(self._revoke(args=[PREFIX, self.keep_ms, "index", index]))

    def purge_expired_tokens(self) -> None:
        """Nothing to do: every key expires on its own."""

    # --- users' Gitea tokens (sealed by the vault) -------------------------------------------

    def claim_vault_key(self, fingerprint: str) -> bool:
        """Record this replica's vault-key fingerprint, or False when the replicas' differs."""
        self._vault_fingerprint = fingerprint
        return bool(
            self._claim_vault_key(keys=[self.key("vault-key")], args=[fingerprint, self.keep_ms])
        )

    def _key_mismatch(self) -> VaultKeyMismatch:
        if not self._mismatch_logged:
            self._mismatch_logged = True
            log.error(
                "oauth.vault_key_mismatch",
                detail="OAUTH_ENCRYPTION_KEY differs from the other replicas' key",
            )
        return VaultKeyMismatch()

    def put_gitea_tokens(self, gitea_user_id: int, login: str, sealed: str, expires: float) -> None:
        stored = self._put_gitea(
            keys=[self.key("gitea", str(gitea_user_id)), self.key("vault-key")],
            args=[self._vault_fingerprint, sealed, login, repr(expires), self.keep_ms],
        )
        if not stored:
            raise self._key_mismatch()

    def get_gitea_tokens(self, gitea_user_id: int) -> tuple[str, float] | None:
        found = self._get_gitea(
            keys=[self.key("gitea", str(gitea_user_id)), self.key("vault-key")],
            args=[self._vault_fingerprint],
        )
        if not int(found[0]):
            raise self._key_mismatch()
        if len(found) < 3:
            return None
        return _text(found[1]), float(_text(found[2]))

    def delete_gitea_tokens(self, gitea_user_id: int) -> None:
        self.redis.delete(self.key("gitea", str(gitea_user_id)))
