"""oauthlib's ``RequestValidator`` over the store: the only place the protocol touches storage.

oauthlib owns the grant rules (PKCE verification, code exchange, refresh, error responses);
this class answers its questions. It runs on the store's thread (the service calls oauthlib
there), so it calls the store's methods directly. Audit events are collected on the request and
emitted by the service on the event loop, where the request's log context lives.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Any

from oauthlib.common import Request
from oauthlib.oauth2 import RequestValidator
from oauthlib.oauth2.rfc6749.grant_types import AuthorizationCodeGrant
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256

from . import redirects
from .tokens import digest, new_token

if TYPE_CHECKING:
    from .store import OAuthStateStore

SCOPE = "gitea:read"
SUPPORTED_SCOPES = (SCOPE,)
CODE_TTL = 60.0
CODE_PREFIX = "agm_ac_"


class Client:
    """What oauthlib keeps as ``request.client``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.client_id: str = data["client_id"]
        self.data = data

    @property
    def redirect_uris(self) -> list[str]:
        return list(self.data.get("redirect_uris") or [])

    @property
    def confidential(self) -> bool:
        return bool(self.data.get("secret_digest"))


class S256OnlyCodeGrant(AuthorizationCodeGrant):
    """OAuth 2.1 for MCP: PKCE with S256 only (a missing method means ``plain``: refused), and
    codes of 256 random bits."""

    _code_challenge_methods = {"S256": code_challenge_method_s256}

    def create_authorization_code(self, request: Request) -> dict[str, str]:
        grant = {"code": new_token(CODE_PREFIX)}
        if hasattr(request, "state") and request.state:
            grant["state"] = request.state
        return grant


def canonical(resource: str) -> str:
    """Scheme and host compared case-insensitively; no trailing slash."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(resource.strip())
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, "")
    )


class AegisRequestValidator(RequestValidator):
    def __init__(
        self,
        store: OAuthStateStore,
        resource: str,
        access_ttl: int,
        refresh_ttl: int,
    ) -> None:
        self.store = store
        self.resource = resource
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        #: Audit events of the oauthlib call in progress (one at a time: the store's thread).
        self.events: list[tuple[str, dict[str, Any]]] = []

    def _emit(self, name: str, **fields: Any) -> None:
        self.events.append((name, fields))

    # --- clients ---------------------------------------------------------------------------

    def _client(self, client_id: str | None) -> Client | None:
        if not client_id:
            return None
        data = self.store.get_client(client_id)
        return Client(data) if data is not None else None

    def validate_client_id(self, client_id, request, *args, **kwargs) -> bool:
        client = self._client(client_id)
        if client is None:
            return False
        request.client = client
        return True

    def client_authentication_required(self, request, *args, **kwargs) -> bool:
        client_id = request.client_id or self._basic_credentials(request)[0]
        client = self._client(client_id)
        return bool(client and client.confidential)

    def authenticate_client(self, request, *args, **kwargs) -> bool:
        client_id, secret = self._basic_credentials(request)
        client_id = client_id or request.client_id
        secret = secret or getattr(request, "client_secret", None)
        client = self._client(client_id)
        if client is None or not client.confidential or not secret:
            return False
        if not hmac.compare_digest(digest(secret), client.data["secret_digest"]):
            return False
        request.client = client
        request.client_id = client.client_id
        return True

    def authenticate_client_id(self, client_id, request, *args, **kwargs) -> bool:
        client = self._client(client_id)
        if client is None or client.confidential:
            return False
        request.client = client
        return True

    @staticmethod
    def _basic_credentials(request: Request) -> tuple[str | None, str | None]:
        header = (request.headers or {}).get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None, None
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        from urllib.parse import unquote

        return unquote(user), unquote(password)

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs) -> bool:
        allowed = client.data.get("grant_types") or ["authorization_code", "refresh_token"]
        return grant_type in allowed

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        return response_type == "code"

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs) -> bool:
        return all(scope in SUPPORTED_SCOPES for scope in scopes)

    def get_default_scopes(self, client_id, request, *args, **kwargs) -> list[str]:
        return [SCOPE]

    # --- redirect URIs ---------------------------------------------------------------------

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs) -> bool:
        client = self._client(client_id)
        return client is not None and redirects.matches(client.redirect_uris, redirect_uri)

    def get_default_redirect_uri(self, client_id, request, *args, **kwargs) -> str | None:
        return None  # OAuth 2.1: the client names its redirect URI on every request

    def is_pkce_required(self, client_id, request) -> bool:
        return True

    # --- authorization codes ---------------------------------------------------------------

    def save_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        user = request.aegis_user
        self.store.save_code(
            digest(code["code"]),
            {
                "client_id": client_id,
                "redirect_uri": request.redirect_uri,
                "scopes": " ".join(request.scopes or [SCOPE]),
                "challenge": request.code_challenge,
                "method": request.code_challenge_method,
                "resource": request.aegis_resource,
                "user": user,
            },
            CODE_TTL,
        )

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        # Taken, not read: with several replicas on one store, two exchanges of one code at
        # the same instant must not both find it.
        data = self.store.take_code(digest(code))
        if data is None or data["client_id"] != client_id:
            self._emit("invalid_code", client_id=client_id)
            return False
        asked = getattr(request, "resource", None)
        if asked and canonical(asked) != data["resource"]:
            self._emit("resource_mismatch", client_id=client_id)
            return False
        request.aegis_code = data
        request.aegis_user = data["user"]
        request.aegis_resource = data["resource"]
        request.user = data["user"]["login"]
        request.scopes = data["scopes"].split()
        return True

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *a, **kw):
        data = getattr(request, "aegis_code", None) or self.store.get_code(digest(code))
        return data is not None and data["redirect_uri"] == redirect_uri

    def get_code_challenge(self, code, request) -> str | None:
        data = getattr(request, "aegis_code", None) or self.store.get_code(digest(code))
        return data["challenge"] if data else None

    def get_code_challenge_method(self, code, request) -> str | None:
        data = getattr(request, "aegis_code", None) or self.store.get_code(digest(code))
        return data["method"] if data else None

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        self.store.delete_code(digest(code))

    # --- tokens ----------------------------------------------------------------------------

    def save_bearer_token(self, token, request, *args, **kwargs) -> None:
        user = request.aegis_user
        presented = getattr(request, "aegis_refresh_digest", None)  # rotated already
        family = getattr(request, "aegis_family", None) or secrets.token_hex(16)
        common = dict(
            client_id=request.client.client_id,
            gitea_user_id=int(user["id"]),
            gitea_login=user["login"],
            resource=request.aegis_resource,
            scopes=" ".join(request.scopes or [SCOPE]),
            family=family,
        )
        self.store.save_token(
            digest(token["access_token"]), "access", ttl=self.access_ttl, **common
        )
        if token.get("refresh_token"):
            self.store.save_token(
                digest(token["refresh_token"]), "refresh", ttl=self.refresh_ttl, **common
            )
        token["scope"] = " ".join(request.scopes or [SCOPE])
        self._emit(
            "token_refreshed" if presented else "token_issued",
            client_id=request.client.client_id,
            gitea_user=user["login"],
            family=family[:8],
        )

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        key = digest(refresh_token)
        row = self.store.get_token(key)
        if row is None or row["kind"] != "refresh" or row["client_id"] != client.client_id:
            self._emit("invalid_refresh_token", client_id=client.client_id)
            return False
        if row["state"] == "rotated":
            return self._reused(row, client.client_id)
        if row["state"] != "active" or row["expires"] < time.time():
            self._emit("invalid_refresh_token", client_id=client.client_id)
            return False
        asked = getattr(request, "resource", None)
        if asked and canonical(asked) != row["resource"]:
            self._emit("resource_mismatch", client_id=client.client_id)
            return False
        if not self.store.rotate_refresh_token(key):
            # Used between the read above and now: by a concurrent request, maybe on another
            # replica. Only one of the two may win the rotation; the other is a reuse.
            return self._reused(row, client.client_id)
        request.aegis_refresh_digest = key
        request.aegis_family = row["family"]
        request.aegis_resource = row["resource"]
        request.aegis_user = {"id": row["gitea_user_id"], "login": row["gitea_login"]}
        request.user = row["gitea_login"]
        request.aegis_original_scopes = row["scopes"].split()
        return True

    def _reused(self, row: dict[str, Any], client_id: str) -> bool:
        """A refresh token used twice: one of the two users is a thief. End the family."""
        self.store.revoke_family(row["family"])
        self._emit(
            "refresh_token_reused",
            client_id=client_id,
            gitea_user=row["gitea_login"],
            family=row["family"][:8],
        )
        return False

    def get_original_scopes(self, refresh_token, request, *args, **kwargs) -> list[str]:
        return getattr(request, "aegis_original_scopes", None) or [SCOPE]

    def rotate_refresh_token(self, request) -> bool:
        return True  # public clients' refresh tokens MUST rotate

    def revoke_token(self, token, token_type_hint, request, *args, **kwargs) -> None:
        row = self.store.get_token(digest(token))
        if row is None or row["client_id"] != request.client.client_id:
            return  # RFC 7009: an unknown token is not an error
        if row["kind"] == "refresh":
            self.store.revoke_family(row["family"])
        else:
            self.store.set_token_state(digest(token), "revoked")
        self._emit(
            "token_revoked",
            client_id=row["client_id"],
            gitea_user=row["gitea_login"],
            kind=row["kind"],
        )

    def validate_bearer_token(self, token, scopes, request) -> bool:
        return False  # the resource server checks tokens itself (OAuthService.authenticate)
