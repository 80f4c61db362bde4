"""The Gitea leg: send the browser to Gitea's authorize page, exchange the code, refresh, and
learn who signed in. Gitea's endpoints come from configuration, never from its discovery
document (its issuer changed form in 1.25)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError


class GiteaLoginError(Exception):
    """The Gitea leg failed. ``error`` is Gitea's OAuth error code (``invalid_grant`` …) or
    ``unavailable``; the message never holds a token, code or secret."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error

    @property
    def grant_gone(self) -> bool:
        """The user revoked the grant, or the refresh token was superseded: re-authorize."""
        return self.error in ("invalid_grant", "unauthorized_client")


@dataclass(frozen=True)
class GiteaTokens:
    access_token: str
    refresh_token: str
    expires_at: float

    def to_json(self) -> str:
        return json.dumps([self.access_token, self.refresh_token, self.expires_at])

    @classmethod
    def from_json(cls, text: str) -> GiteaTokens:
        access, refresh, expires = json.loads(text)
        return cls(access, refresh, float(expires))


@dataclass(frozen=True)
class GiteaUser:
    id: int
    login: str


def pkce_pair() -> tuple[str, str]:
    """A server-side PKCE verifier for the Gitea leg, and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


class GiteaLogin:
    def __init__(
        self,
        api_url: str,
        browser_url: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        scopes: str,
        timeout: float = 10.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.browser_url = browser_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.redirect_uri = redirect_uri
        self.scopes = scopes
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GiteaLogin(api_url={self.api_url!r}, client_id={self.client_id!r})"

    def authorize_url(self, state: str, challenge: str) -> str:
        query = {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "state": state,
            "scope": self.scopes,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.browser_url}/login/oauth/authorize?{urlencode(query)}"

    async def exchange_code(self, code: str, verifier: str) -> GiteaTokens:
        return await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            }
        )

    async def refresh(self, refresh_token: str) -> GiteaTokens:
        return await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )

    async def _token_request(self, form: dict[str, str]) -> GiteaTokens:
        basic = base64.b64encode(f"{self.client_id}:{self._secret}".encode()).decode()
        data = await self._fetch(
            "/login/oauth/access_token",
            method="POST",
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            body=urlencode(form),
        )
        access, refresh = data.get("access_token"), data.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str):
            raise GiteaLoginError("invalid_response", "Gitea's token response has no tokens")
        expires_in = data.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, (int, float)) else 3600.0
        return GiteaTokens(access, refresh, time.time() + lifetime)

    async def user(self, access_token: str) -> GiteaUser:
        data = await self._fetch(
            "/api/v1/user",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
        user_id, login = data.get("id"), data.get("login")
        if not isinstance(user_id, int) or not isinstance(login, str) or not login:
            raise GiteaLoginError("invalid_response", "Gitea's /user answer has no id or login")
        return GiteaUser(user_id, login)

    async def _fetch(self, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await AsyncHTTPClient().fetch(
                self.api_url + path,
                request_timeout=self.timeout,
                connect_timeout=self.timeout,
                follow_redirects=False,
                **kwargs,
            )
            body = response.body
        except HTTPClientError as error:
            body = error.response.body if error.response is not None else b""
            error_code = "unavailable"
            try:
                error_code = str(json.loads(body).get("error") or "") or f"http_{error.code}"
            except (ValueError, AttributeError):
                error_code = f"http_{error.code}"
            raise GiteaLoginError(
                error_code, f"Gitea answered {path} with HTTP {error.code}"
            ) from None
        except OSError as error:
            raise GiteaLoginError(
                "unavailable", f"Gitea unreachable ({type(error).__name__})"
            ) from None
        try:
            data = json.loads(body)
        except ValueError:
            raise GiteaLoginError(
                "invalid_response", f"Gitea's {path} answer is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise GiteaLoginError("invalid_response", f"Gitea's {path} answer is not an object")
        return data
