"""The OAuth pieces together: metadata, registration, the oauthlib server, the Gitea leg, the
token check of the resource server. The HTTP handlers (``web/oauth.py``, ``web/well_known.py``)
hold only verbs over this."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from oauthlib.oauth2 import WebApplicationServer
from oauthlib.oauth2.rfc6749.grant_types import RefreshTokenGrant
from oauthlib.oauth2.rfc6749.tokens import BearerToken

from ..auth.limiter import FailedAuthLimiter
from . import redirects
from .cimd import CimdClients, is_cimd_client_id
from .gitea_login import GiteaLogin
from .store import OAuthStore
from .tokens import ACCESS_PREFIX, CLIENT_PREFIX, REFRESH_PREFIX, digest, new_token
from .validator import SCOPE, AegisRequestValidator, S256OnlyCodeGrant, canonical
from .vault import GiteaTokenVault, UserGiteaCredentials, load_or_create_key


def _silence_oauthlib() -> None:
    """oauthlib's debug lines carry tokens and codes verbatim: none of them reaches our logs."""
    logging.getLogger("oauthlib").setLevel(logging.ERROR)


#: oauthlib only parses the URI it is given; the real scheme and host are PUBLIC_URL's.
_PARSE_BASE = "https://aegis.invalid"
MAX_REDIRECT_URIS = 10
MAX_DCR_CLIENTS = 10_000
AUTHORIZATIONS_PER_MINUTE = 30


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
        state_path: str,
        encryption_key: str | None,
        access_ttl: int,
        refresh_ttl: int,
        redirect_prefixes: tuple[str, ...],
        registrations_per_minute: int,
        cimd_hosts: tuple[str, ...] = (),
        gitea_timeout: float = 10.0,
    ) -> None:
        _silence_oauthlib()
        self.issuer = public_url.rstrip("/")
        self.resource = canonical(self.issuer + "/mcp")
        self.secure_cookies = self.issuer.startswith("https://")
        self.redirect_prefixes = redirect_prefixes
        self.cimd = CimdClients(cimd_hosts)
        self.store = OAuthStore(state_path)
        key_path = state_path + ".key" if state_path != ":memory:" else ""
        key = load_or_create_key(encryption_key, key_path) if key_path else None
        if key is None:
            from cryptography.fernet import Fernet

            key = encryption_key.encode() if encryption_key else Fernet.generate_key()
        self.gitea = GiteaLogin(
            gitea_api_url,
            gitea_browser_url,
            client_id,
            client_secret,
            self.issuer + "/oauth/callback",
            scopes,
            timeout=gitea_timeout,
        )
        self.vault = GiteaTokenVault(self.store, self.gitea, key)
        self.validator = AegisRequestValidator(self.store, self.resource, access_ttl, refresh_ttl)
        self.server = OAuthServer(self.validator, access_ttl)
        self.registrations = FailedAuthLimiter(registrations_per_minute, 60.0, 20_000)
        #: Consent pages per client IP: each holds a stored transaction for 10 minutes.
        self.authorizations = FailedAuthLimiter(AUTHORIZATIONS_PER_MINUTE, 60.0, 20_000)

    def close(self) -> None:
        self.store.close()

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
        if await self.store.call(self.store.count_clients, "dcr") >= MAX_DCR_CLIENTS:
            raise RegistrationError("temporarily_unavailable", "Too many registered clients")
        await self.store.call(self.store.add_client, client_id, metadata, "dcr", None)
        return {
            "client_id": client_id,
            "client_id_issued_at": int(time.time()),
            **metadata,
            **({"scope": SCOPE} if body.get("scope") else {}),
        }

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

    def _collecting(self, fn):
        """Run an oauthlib call on the store's thread, with the validator's audit events."""

        def run():
            self.validator.events = []
            try:
                return fn(), self.validator.events
            finally:
                self.validator.events = []

        return self.store.call(run)

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

    async def authenticate(self, token: str) -> OAuthCaller | None:
        row = await self.store.call(self.store.get_token, digest(token))
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
