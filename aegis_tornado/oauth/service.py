"""The OAuth pieces together: metadata, registration, the oauthlib server, the Gitea leg, the
token check of the resource server. The HTTP handlers (``web/oauth.py``, ``web/well_known.py``)
hold only verbs over this."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oauthlib.oauth2 import WebApplicationServer
from oauthlib.oauth2.rfc6749.grant_types import RefreshTokenGrant
from oauthlib.oauth2.rfc6749.tokens import BearerToken

from . import redirects
from .cimd import CimdClients, is_cimd_client_id
from .gitea_login import GiteaLogin
from .limits import AttemptRate
from .tokens import ACCESS_PREFIX, CLIENT_PREFIX, REFRESH_PREFIX, digest, new_token
from .validator import SCOPE, AegisRequestValidator, S256OnlyCodeGrant, canonical
from .vault import GiteaTokenVault, UserGiteaCredentials

if TYPE_CHECKING:
    from ..state.store import StateStore
    from .store import OAuthStateStore


def _silence_oauthlib() -> None:
    """oauthlib's debug lines carry tokens and codes verbatim: none of them reaches our logs."""
    logging.getLogger("oauthlib").setLevel(logging.ERROR)


#: oauthlib only parses the URI it is given; the real scheme and host are PUBLIC_URL's.
_PARSE_BASE = "https://aegis.invalid"
MAX_REDIRECT_URIS = 10
MAX_DCR_CLIENTS = 10_000
AUTHORIZATIONS_PER_MINUTE = 30
#: Verified access tokens remembered at once (the oldest is forgotten first).
TOKEN_CACHE_SIZE = 10_000
#: Audit events after which cached verifications may be stale: the cache is emptied.
_REVOKING_EVENTS = frozenset({"token_revoked", "refresh_token_reused"})


@dataclass(frozen=True)
class OAuthCaller:
    """A valid access token's grant: who, through which client, for which resource."""

    gitea_user_id: int
    gitea_login: str
    client_id: str
    family: str
    credentials: UserGiteaCredentials


class RegistrationError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class OAuthServer(WebApplicationServer):
    """oauthlib's web-application server with OAuth 2.1's rules: S256-only PKCE, rotating
    refresh tokens, our token formats."""

    def __init__(self, validator: AegisRequestValidator, access_ttl: int) -> None:
        super().__init__(
            validator,
            token_generator=lambda request: new_token(ACCESS_PREFIX),
            refresh_token_generator=lambda request: new_token(REFRESH_PREFIX),
            token_expires_in=access_ttl,
        )
        code_grant = S256OnlyCodeGrant(validator)
        self.auth_grant = code_grant
        self._response_types["code"] = code_grant
        self._grant_types["authorization_code"] = code_grant
        self._grant_types["refresh_token"] = RefreshTokenGrant(
            validator, issue_new_refresh_tokens=True
        )
        self.bearer = BearerToken(
            validator,
            lambda request: new_token(ACCESS_PREFIX),
            access_ttl,
            lambda request: new_token(REFRESH_PREFIX),
        )
        self._default_token_type = self.bearer


class OAuthService:
    def __init__(
        self,
        *,
        public_url: str,
        gitea_api_url: str,
        gitea_browser_url: str,
        client_id: str,
        client_secret: str,
        scopes: str,
        store: OAuthStateStore,
        vault_key: bytes,
        access_ttl: int,
        refresh_ttl: int,
        redirect_prefixes: tuple[str, ...],
        registrations_per_minute: int,
        cimd_hosts: tuple[str, ...] = (),
        gitea_timeout: float = 10.0,
        state: StateStore | None = None,
        token_cache_ttl: float = 0.0,
    ) -> None:
        _silence_oauthlib()
        self.issuer = public_url.rstrip("/")
        self.resource = canonical(self.issuer + "/mcp")
        self.secure_cookies = self.issuer.startswith("https://")
        self.redirect_prefixes = redirect_prefixes
        self.cimd = CimdClients(cimd_hosts)
        self.store = store
        #: digest -> (monotonic time it may be used until, the token's record): a verified
        #: access token is not looked up again for ``token_cache_ttl`` seconds. Emptied when
        #: this process revokes anything; a revocation on another replica (or by the admin
        #: command) is seen here at most ``token_cache_ttl`` seconds later.
        self.token_cache_ttl = token_cache_ttl
        self._verified: dict[str, tuple[float, dict[str, Any]]] = {}
        self.gitea = GiteaLogin(
            gitea_api_url,
            gitea_browser_url,
            client_id,
            client_secret,
            self.issuer + "/oauth/callback",
            scopes,
            timeout=gitea_timeout,
        )
        self.vault = GiteaTokenVault(
            self.store,
            self.gitea,
            vault_key,
            self.forget_verified,
            cache_ttl=token_cache_ttl,
            cache_size=TOKEN_CACHE_SIZE,
        )
        self.validator = AegisRequestValidator(self.store, self.resource, access_ttl, refresh_ttl)
        self.server = OAuthServer(self.validator, access_ttl)
        self.registrations = AttemptRate("register", registrations_per_minute, state)
        #: Consent pages per client IP: each holds a stored transaction for 10 minutes.
        self.authorizations = AttemptRate("authorize", AUTHORIZATIONS_PER_MINUTE, state)

    def close(self) -> None:
        self.store.close()

    async def claim_vault_key(self) -> bool:
        """False when the replicas sharing this store seal with another key (Redis keeps the
        key's fingerprint, never the key); ``StateUnavailable`` when that cannot be checked."""
        return await self.store.call(self.store.claim_vault_key, self.vault.fingerprint)

    # --- metadata --------------------------------------------------------------------------

    @property
    def resource_metadata_url(self) -> str:
        return self.issuer + "/.well-known/oauth-protected-resource/mcp"

    def challenge(self, error: str | None = None) -> str:
        value = f'Bearer resource_metadata="{self.resource_metadata_url}", scope="{SCOPE}"'
        if error:
            value += f', error="{error}"'
        return value

    def protected_resource_metadata(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "scopes_supported": [SCOPE],
            "bearer_methods_supported": ["header"],
            "resource_name": "AegisGitea MCP",
        }

    def authorization_server_metadata(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "registration_endpoint": f"{base}/oauth/register",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": [SCOPE],
            "authorization_response_iss_parameter_supported": True,
            "client_id_metadata_document_supported": bool(self.cimd.trusted_hosts),
        }

    # --- dynamic client registration (RFC 7591) ---------------------------------------------

    async def register(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise RegistrationError("invalid_client_metadata", "The body must be a JSON object")
        uris = body.get("redirect_uris")
        if (
            not isinstance(uris, list)
            or not uris
            or len(uris) > MAX_REDIRECT_URIS
            or not all(isinstance(u, str) and 0 < len(u) <= 2000 for u in uris)
        ):
            raise RegistrationError(
                "invalid_redirect_uri", "redirect_uris must be a list of 1 to 10 URIs"
            )
        for uri in uris:
            if not redirects.registrable(uri, self.redirect_prefixes):
                raise RegistrationError(
                    "invalid_redirect_uri",
                    "Redirect URIs must be loopback (http://127.0.0.1, http://localhost) or "
                    "under a trusted https prefix (ChatGPT, Claude, or the operator's "
                    "OAUTH_REDIRECT_PREFIXES)",
                )
        method = body.get("token_endpoint_auth_method", "none")
        if method != "none":
            raise RegistrationError(
                "invalid_client_metadata",
                "Only public clients are registered: token_endpoint_auth_method must be 'none'",
            )
        grant_types = body.get("grant_types", ["authorization_code", "refresh_token"])
        if not isinstance(grant_types, list) or not set(grant_types) <= {
            "authorization_code",
            "refresh_token",
        }:
            raise RegistrationError(
                "invalid_client_metadata", "grant_types may hold authorization_code, refresh_token"
            )
        response_types = body.get("response_types", ["code"])
        if response_types != ["code"]:
            raise RegistrationError("invalid_client_metadata", "response_types must be ['code']")
        name = body.get("client_name")
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise RegistrationError("invalid_client_metadata", "client_name must be a short string")
        client_id = CLIENT_PREFIX + secrets.token_urlsafe(16)
        metadata = {
            "client_name": name or "Unnamed client",
            "redirect_uris": uris,
            "grant_types": grant_types or ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        added = await self.store.call(
            self.store.add_client, client_id, metadata, "dcr", None, MAX_DCR_CLIENTS
        )
        if not added:
            raise RegistrationError("temporarily_unavailable", "Too many registered clients")
        return {
            "client_id": client_id,
            "client_id_issued_at": int(time.time()),
            **metadata,
            **({"scope": SCOPE} if body.get("scope") else {}),
        }

    async def delete_client(self, client_id: str) -> None:
        """Delete a client and revoke its tokens (here at once; elsewhere within the cache TTL)."""
        await self.store.call(self.store.delete_client, client_id)
        self.forget_verified()

    async def client(self, client_id: str) -> dict[str, Any] | None:
        """A registered client, or a CIMD client whose document is fetched (and kept, so the
        token endpoint knows it). Raises ``CimdError`` for an unusable document."""
        if is_cimd_client_id(client_id):
            metadata = await self.cimd.load(client_id)
            await self.store.call(self.store.add_client, client_id, metadata, "cimd", None)
        return await self.store.call(self.store.get_client, client_id)

    # --- oauthlib, on the store's thread ----------------------------------------------------

    async def validate_authorization(self, query: str) -> tuple[list[str], dict[str, Any]]:
        """oauthlib's checks of an authorization request; raises its errors."""

        def run():
            return self.server.validate_authorization_request(
                f"{_PARSE_BASE}/oauth/authorize?{query}", "GET", None, {}
            )

        return await self.store.call(run)

    async def create_authorization(
        self, query: str, scopes: list[str], user: dict[str, Any], resource: str
    ) -> dict[str, str]:
        """Issue the code (oauthlib saves it through the validator); the redirect's headers."""

        def run():
            headers, _body, _status = self.server.create_authorization_response(
                f"{_PARSE_BASE}/oauth/authorize?{query}",
                "GET",
                None,
                {},
                scopes,
                {"aegis_user": user, "aegis_resource": resource},
            )
            return headers

        return await self.store.call(run)

    async def _collecting(self, fn):
        """Run an oauthlib call on the store's thread, with the validator's audit events."""

        def run():
            self.validator.events = []
            try:
                return fn(), self.validator.events
            finally:
                self.validator.events = []

        result, events = await self.store.call(run)
        if any(name in _REVOKING_EVENTS for name, _ in events):
            self.forget_verified()
        return result, events

    async def token_response(
        self, body: str, headers: dict[str, str]
    ) -> tuple[tuple[dict[str, str], str, int], list[tuple[str, dict[str, Any]]]]:
        return await self._collecting(
            lambda: self.server.create_token_response(
                f"{_PARSE_BASE}/oauth/token", "POST", body, headers
            )
        )

    async def revoke_response(
        self, body: str, headers: dict[str, str]
    ) -> tuple[tuple[dict[str, str], str, int], list[tuple[str, dict[str, Any]]]]:
        return await self._collecting(
            lambda: self.server.create_revocation_response(
                f"{_PARSE_BASE}/oauth/revoke", "POST", body, headers
            )
        )

    # --- browser transactions ---------------------------------------------------------------

    async def begin(
        self, kind: str, data: dict[str, Any], ttl: float = 600.0
    ) -> tuple[str, str] | None:
        """A single-use handle and the browser binding secret for its cookie; None when too
        many sign-ins are in progress."""
        handle, binding = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        stored = await self.store.call(
            self.store.put_transaction, digest(handle), kind, digest(binding), data, ttl
        )
        return (handle, binding) if stored else None

    async def finish(self, kind: str, handle: str, binding: str | None) -> dict[str, Any] | None:
        """The transaction's data if ``handle`` is live and ``binding`` is its browser's."""
        found = await self.store.call(self.store.take_transaction, digest(handle), kind)
        if found is None or binding is None:
            return None
        expected, data = found
        if not secrets.compare_digest(expected, digest(binding)):
            return None
        return data

    # --- resource server --------------------------------------------------------------------

    def forget_verified(self) -> None:
        self._verified.clear()

    async def _token_record(self, key: str) -> dict[str, Any] | None:
        cached = self._verified.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self.store.call(self.store.get_token, key)
        if self.token_cache_ttl > 0 and row is not None and row["state"] == "active":
            if cached is None and len(self._verified) >= TOKEN_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]  # the oldest entry
            self._verified[key] = (now + self.token_cache_ttl, row)
        return row

    async def authenticate(self, token: str) -> OAuthCaller | None:
        """The grant of a live access token, or None; ``StateUnavailable`` when the store
        cannot be reached (the gate answers 503: never a token let through unchecked)."""
        row = await self._token_record(digest(token))
        if (
            row is None
            or row["kind"] != "access"
            or row["state"] != "active"
            or row["expires"] < time.time()
            or row["resource"] != self.resource
        ):
            return None
        return OAuthCaller(
            gitea_user_id=row["gitea_user_id"],
            gitea_login=row["gitea_login"],
            client_id=row["client_id"],
            family=row["family"],
            credentials=UserGiteaCredentials(self.vault, row["gitea_user_id"], row["gitea_login"]),
        )
