"""Gitea's OAuth2 provider, as the double serves it (reference oauth.md §3 and §6.3).

What is mimicked, because the product's OAuth leg depends on it:

* ``/user/login``: a minimal sign-in form (``user_name``, ``password``) setting a session cookie.
* ``GET /login/oauth/authorize``: sign-in required (else to ``/user/login?redirect_to=…``);
  unknown client or unregistered redirect URI → a 400 page, never a redirect; exact, ASCII
  case-insensitive redirect match with any port for public clients' loopback-IP URIs;
  ``response_type`` must be ``code``; PKCE ``S256``/``plain``, required for public clients. An
  existing grant of a confidential app redirects at once with a new code (Gitea's consent
  memory: the confused-deputy hazard the product's own consent page answers); otherwise the
  grant page.
* ``POST /login/oauth/grant``: must match the session's ``client_id``/``state``/``redirect_uri``;
  303 with ``code=gta_…`` (``state`` only when non-empty, never ``iss``) or ``access_denied``.
* ``POST /login/oauth/access_token``: form or JSON, client credentials in the body or HTTP Basic;
  single-use 10-minute codes, PKCE, redirect-URI equality; refresh with Gitea's grant counter
  when ``invalidate_refresh_tokens``; every error is 400 ``{"error", "error_description"}``.
* One grant per (user, application); tokens die with their grant; the effective scope is the
  grant's scope minus the OIDC ones, and *all* scopes when nothing parsable remains.
* ``/login/oauth/userinfo`` and ``/.well-known/openid-configuration``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tornado import escape, web

OIDC_SCOPES = frozenset({"openid", "profile", "email", "groups"})
_CATEGORIES = (
    "activitypub",
    "admin",
    "issue",
    "misc",
    "notification",
    "organization",
    "package",
    "repository",
    "user",
)
ALL_SCOPES = frozenset(f"{level}:{cat}" for level in ("read", "write") for cat in _CATEGORIES)
_KNOWN_SCOPES = ALL_SCOPES | {"all", "public-only"}
CODE_TTL = 600
SESSION_COOKIE = "i_like_gitea"

#: The demo's Gitea OAuth2 application (the product registers as this confidential client).
DEMO_CLIENT_ID = "5c4e2b8a-aeg1-4d3e-9c1b-demo00000001"
DEMO_CLIENT_SECRET = "gto_demoappsecretnotforproductionuse000000000000000"
#: Sign-in passwords of the demo's people (printed at start in demo mode).
DEMO_PASSWORDS = {"alice": "alice-demo-pass", "bob": "bob-demo-pass", "carol": "carol-demo-pass"}


def effective_scopes(scope: str) -> frozenset[str]:
    """Gitea's rule: grant scope minus OIDC scopes; nothing left or unparsable → everything."""
    rest = [s for s in scope.replace(",", " ").split() if s not in OIDC_SCOPES]
    if not rest or any(s not in _KNOWN_SCOPES for s in rest):
        return frozenset({"all"})
    return frozenset(rest)


@dataclass
class OAuthApp:
    client_id: str
    secret: str | None
    redirect_uris: tuple[str, ...]
    confidential: bool = True
    name: str = "app"

    def contains_redirect_uri(self, uri: str) -> bool:
        if any(uri.lower() == known.lower() for known in self.redirect_uris):
            return True
        if self.confidential:
            return False
        parts = urlsplit(uri)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1"):
            return False
        for known in self.redirect_uris:
            k = urlsplit(known)
            if (k.scheme, k.hostname, k.path, k.query) == ("http", parts.hostname, parts.path, ""):
                return True
        return False


@dataclass
class Grant:
    id: int
    login: str
    client_id: str
    scope: str
    counter: int = 1


@dataclass
class Code:
    client_id: str
    login: str
    redirect_uri: str
    challenge: str
    method: str
    expires: float


@dataclass
class IssuedToken:
    grant_id: int
    kind: int  # 0 access, 1 refresh (Gitea's "tt" claim)
    counter: int
    expires: float


@dataclass
class OAuthProvider:
    """The double's OAuth2 state; ``tokens`` are checked by the API handlers."""

    passwords: dict[str, str] = field(default_factory=lambda: dict(DEMO_PASSWORDS))
    apps: dict[str, OAuthApp] = field(default_factory=dict)
    grants: dict[tuple[str, str], Grant] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_token_ttl: float = 3600.0
    refresh_token_ttl: float = 730 * 3600.0
    invalidate_refresh_tokens: bool = False
    issuer_trailing_slash: bool = False  # Gitea before 1.25
    #: Token requests by grant type, so tests can count refreshes.
    token_requests: dict[str, int] = field(default_factory=dict)
    _next_grant: int = 1

    def register_app(self, app: OAuthApp) -> OAuthApp:
        self.apps[app.client_id] = app
        return app

    def grant_by_id(self, grant_id: int) -> Grant | None:
        return next((g for g in self.grants.values() if g.id == grant_id), None)

    def revoke(self, login: str, client_id: str | None = None) -> int:
        """The user clicks Revoke: the grant, hence all of its tokens, is gone."""
        gone = [k for k in self.grants if k[0] == login and client_id in (None, k[1])]
        for key in gone:
            del self.grants[key]
        return len(gone)

    def resolve_access_token(self, token: str) -> tuple[str, frozenset[str]] | None | bool:
        """``(login, scopes)`` for a live access token; False for a dead one of ours; None for a
        token that is not an OAuth token (the caller tries its PAT table)."""
        issued = self.tokens.get(token)
        if issued is None:
            return None
        grant = self.grant_by_id(issued.grant_id)
        if issued.kind != 0 or grant is None or issued.expires < time.time():
            return False
        return grant.login, effective_scopes(grant.scope)

    def _mint(self, grant: Grant, kind: int, ttl: float) -> str:
        now = int(time.time())
        payload = {
            "gnt": grant.id,
            "tt": kind,
            "cnt": grant.counter,
            "exp": now + int(ttl),
            "iat": now,
        }

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        token = ".".join(
            [
                b64(b'{"alg":"RS256","typ":"JWT"}'),
                b64(json.dumps(payload).encode()),
                b64(secrets.token_bytes(32)),
            ]
        )
        self.tokens[token] = IssuedToken(grant.id, kind, grant.counter, time.time() + ttl)
        return token

    def token_response(self, grant: Grant) -> dict[str, Any]:
        return {
            "access_token": self._mint(grant, 0, self.access_token_ttl),
            "token_type": "bearer",
            "expires_in": int(self.access_token_ttl),
            "refresh_token": self._mint(grant, 1, self.refresh_token_ttl),
        }

    def grant_for(self, login: str, client_id: str, scope: str) -> Grant:
        grant = self.grants.get((login, client_id))
        if grant is None:
            grant = Grant(self._next_grant, login, client_id, scope)
            self._next_grant += 1
            self.grants[(login, client_id)] = grant
        else:
            grant.scope = scope  # newer Gitea updates the scope of an existing grant
        return grant


class _OAuthHandler(web.RequestHandler):
    def initialize(self, double: Any) -> None:
        self.double = double
        self.provider: OAuthProvider = double.oauth

    def check_xsrf_cookie(self) -> None:  # the double does not model Gitea's _csrf field
        pass

    @property
    def root(self) -> str:
        return (
            f"{self.request.protocol}://{self.request.host}{self.settings.get('gitea_prefix', '')}"
        )

    def session(self) -> dict[str, Any] | None:
        sid = self.get_cookie(SESSION_COOKIE)
        return self.provider.sessions.get(sid) if sid else None

    def page(self, status: int, title: str, body: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            f"<!doctype html><html><head><title>{escape.xhtml_escape(title)} - Gitea</title>"
            f"</head><body><h1>{escape.xhtml_escape(title)}</h1>{body}</body></html>"
        )

    def redirect_303(self, url: str) -> None:
        self.redirect(url, status=303)


class SignInHandler(_OAuthHandler):
    def get(self) -> None:
        target = self.get_argument("redirect_to", "/")
        self.page(
            200,
            "Sign In",
            '<form method="post" action="/user/login">'
            f'<input type="hidden" name="redirect_to" value="{escape.xhtml_escape(target)}">'
            '<label>Username <input name="user_name"></label>'
            '<label>Password <input name="password" type="password"></label>'
            '<button type="submit">Sign In</button></form>',
        )

    def post(self) -> None:
        login = self.get_body_argument("user_name", "")
        password = self.get_body_argument("password", "")
        known = self.provider.passwords.get(login)
        if known is None or not hmac.compare_digest(known.encode(), password.encode()):
            self.page(200, "Sign In", "<p>Username or password is incorrect.</p>")
            return
        sid = secrets.token_urlsafe(24)
        self.provider.sessions[sid] = {"login": login}
        self.set_cookie(SESSION_COOKIE, sid, httponly=True, path="/")
        target = self.get_body_argument("redirect_to", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        self.redirect_303(target)


class AuthorizeHandler(_OAuthHandler):
    def get(self) -> None:
        session = self.session()
        if session is None:
            self.redirect_303("/user/login?" + urlencode({"redirect_to": self.request.uri}))
            return
        arg = self.get_query_argument
        client_id, redirect_uri = arg("client_id", ""), arg("redirect_uri", "")
        state, scope = arg("state", ""), arg("scope", "")
        app = self.provider.apps.get(client_id)
        if app is None:
            self.page(400, "Error", "<p>Client ID not registered</p>")
            return
        if not app.contains_redirect_uri(redirect_uri):
            self.page(400, "Error", "<p>Unregistered Redirect URI</p>")
            return

        def fail(error: str, description: str) -> None:
            query = {"error": error, "error_description": description, "state": state}
            self.redirect_303(_append(redirect_uri, query))

        if arg("response_type", "") != "code":
            fail("unsupported_response_type", "Only code response type is supported.")
            return
        challenge, method = arg("code_challenge", ""), arg("code_challenge_method", "")
        if method not in ("", "S256", "plain"):
            fail("invalid_request", "unsupported code challenge method")
            return
        if not app.confidential and not challenge:
            fail("invalid_request", "PKCE is required for public clients")
            return
        session["authorize"] = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": scope,
            "challenge": challenge,
            "method": method or ("plain" if challenge else ""),
        }
        grant = self.provider.grants.get((session["login"], client_id))
        if grant is not None and app.confidential:
            # Gitea's consent memory: no page for a repeat grant of a confidential app.
            grant.scope = scope
            self.redirect_303(self._code_redirect(session))
            return
        fields = "".join(
            f'<input type="hidden" name="{name}" value="{escape.xhtml_escape(value)}">'
            for name, value in (
                ("client_id", client_id),
                ("state", state),
                ("scope", scope),
                ("nonce", ""),
                ("redirect_uri", redirect_uri),
            )
        )
        self.page(
            200,
            "Authorize Application",
            f"<p>{escape.xhtml_escape(app.name)} asks for access to your account "
            f"({escape.xhtml_escape(scope)}).</p>"
            f'<form method="post" action="/login/oauth/grant">{fields}'
            '<button name="granted" value="true">Grant</button>'
            '<button name="granted" value="false">Cancel</button></form>',
        )

    def _code_redirect(self, session: dict[str, Any]) -> str:
        pending = session.pop("authorize")
        self.provider.grant_for(session["login"], pending["client_id"], pending["scope"])
        code = "gta_" + base64.b32encode(secrets.token_bytes(32)).decode().rstrip("=").lower()
        self.provider.codes[code] = Code(
            pending["client_id"],
            session["login"],
            pending["redirect_uri"],
            pending["challenge"],
            pending["method"],
            time.time() + CODE_TTL,
        )
        query = {"code": code}
        if pending["state"]:
            query["state"] = pending["state"]
        return _append(pending["redirect_uri"], query)


class GrantHandler(AuthorizeHandler):
    def get(self) -> None:
        raise web.HTTPError(405)

    def post(self) -> None:
        session = self.session()
        if session is None:
            self.redirect_303("/user/login")
            return
        pending = session.get("authorize")
        body = self.get_body_argument
        if pending is None or (
            body("client_id", ""),
            body("state", ""),
            body("redirect_uri", ""),
        ) != (pending["client_id"], pending["state"], pending["redirect_uri"]):
            self.page(400, "Error", "<p>Invalid session</p>")
            return
        if body("granted", "") != "true":
            session.pop("authorize", None)
            query = {
                "error": "access_denied",
                "error_description": "the request is denied",
                "state": pending["state"],
            }
            self.redirect_303(_append(pending["redirect_uri"], query))
            return
        self.redirect_303(self._code_redirect(session))


class AccessTokenHandler(_OAuthHandler):
    def _error(self, error: str, description: str) -> None:
        self.set_status(400)
        self.set_header("Content-Type", "application/json;charset=utf-8")
        self.finish(json.dumps({"error": error, "error_description": description}))

    def post(self) -> None:
        form = self._form()
        grant_type = form.get("grant_type", "")
        self.provider.token_requests[grant_type] = (
            self.provider.token_requests.get(grant_type, 0) + 1
        )
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        basic = self.request.headers.get("Authorization", "")
        if basic.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(basic[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                self._error("invalid_request", "invalid basic auth header")
                return
            if (client_id and client_id != user) or (secret and secret != password):
                self._error(
                    "invalid_request",
                    "client_id in request body inconsistent with Authorization header",
                )
                return
            client_id, secret = user, password
        if grant_type not in ("authorization_code", "refresh_token"):
            self._error(
                "unsupported_grant_type",
                "Only refresh_token or authorization_code grant type is supported",
            )
            return
        app = self.provider.apps.get(client_id)
        if app is None:
            self._error("invalid_client", f"cannot load client with client_id: '{client_id}'")
            return
        if app.confidential and not (app.secret and hmac.compare_digest(app.secret, secret)):
            self._error("unauthorized_client", "invalid client secret")
            return
        if grant_type == "refresh_token":
            self._refresh(app, form.get("refresh_token", ""))
        else:
            self._code(app, form)

    def _form(self) -> dict[str, str]:
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type == "application/json":
            try:
                data = json.loads(self.request.body or b"{}")
            except ValueError:
                return {}
            return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        return dict(parse_qsl(self.request.body.decode("utf-8", "replace")))

    def _code(self, app: OAuthApp, form: dict[str, str]) -> None:
        code = self.provider.codes.pop(form.get("code", ""), None)
        if code is None or code.client_id != app.client_id:
            self._error("unauthorized_client", "client is not authorized")
            return
        if code.expires < time.time():
            self._error("invalid_grant", "authorization code expired")
            return
        verifier = form.get("code_verifier", "")
        if code.method == "S256":
            digest = hashlib.sha256(verifier.encode()).digest()
            ok = base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == code.challenge
        elif code.method == "plain":
            ok = verifier == code.challenge
        else:
            ok = True
        if not ok:
            self._error("unauthorized_client", "failed PKCE code challenge")
            return
        if form.get("redirect_uri", "") != code.redirect_uri:
            self._error("unauthorized_client", "unexpected redirect URI")
            return
        grant = self.provider.grants.get((code.login, app.client_id))
        if grant is None:
            self._error("invalid_grant", "grant does not exist")
            return
        if self.provider.invalidate_refresh_tokens:
            grant.counter += 1
        self._send(self.provider.token_response(grant))

    def _refresh(self, app: OAuthApp, token: str) -> None:
        issued = self.provider.tokens.get(token)
        if issued is None or issued.kind != 1 or issued.expires < time.time():
            self._error("unauthorized_client", "unable to parse refresh token")
            return
        grant = self.provider.grant_by_id(issued.grant_id)
        if grant is None:
            self._error("invalid_grant", "grant does not exist")
            return
        if grant.client_id != app.client_id:
            self._error("unauthorized_client", "client is not authorized")
            return
        if self.provider.invalidate_refresh_tokens:
            if issued.counter != grant.counter:
                self._error("unauthorized_client", "token was already used")
                return
            grant.counter += 1
        self._send(self.provider.token_response(grant))

    def _send(self, body: dict[str, Any]) -> None:
        self.set_header("Content-Type", "application/json;charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))


class UserInfoHandler(_OAuthHandler):
    def get(self) -> None:
        header = self.request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        resolved = self.provider.resolve_access_token(token)
        if not isinstance(resolved, tuple):
            self.set_status(401)
            self.finish({"error": "invalid_token", "error_description": "invalid token"})
            return
        user = self.double.dataset.user(resolved[0])
        self.finish(
            {
                "sub": str(user.id),
                "name": user.full_name,
                "preferred_username": user.login,
                "email": user.email,
                "groups": None,
            }
        )

    post = get


class OpenIdConfigurationHandler(_OAuthHandler):
    def get(self) -> None:
        root = self.root
        self.finish(
            {
                "issuer": root + ("/" if self.provider.issuer_trailing_slash else ""),
                "authorization_endpoint": f"{root}/login/oauth/authorize",
                "token_endpoint": f"{root}/login/oauth/access_token",
                "jwks_uri": f"{root}/login/oauth/keys",
                "userinfo_endpoint": f"{root}/login/oauth/userinfo",
                "introspection_endpoint": f"{root}/login/oauth/introspect",
                "response_types_supported": ["code", "id_token"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "subject_types_supported": ["public"],
                "scopes_supported": ["openid", "profile", "email", "groups"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
            }
        )


class OAuthControl(_OAuthHandler):
    """``/__double__/oauth``: GET the state's counters, POST settings, DELETE a user's grants."""

    def get(self) -> None:
        p = self.provider
        self.finish(
            {
                "token_requests": p.token_requests,
                "grants": [
                    {"id": g.id, "login": g.login, "client_id": g.client_id, "scope": g.scope}
                    for g in p.grants.values()
                ],
            }
        )

    def post(self) -> None:
        data = json.loads(self.request.body or b"{}")
        p = self.provider
        if "access_token_ttl" in data:
            p.access_token_ttl = float(data["access_token_ttl"])
        if "invalidate_refresh_tokens" in data:
            p.invalidate_refresh_tokens = bool(data["invalidate_refresh_tokens"])
        self.finish({"ok": True})

    def delete(self) -> None:
        login = self.get_query_argument("login")
        self.finish(
            {"revoked": self.provider.revoke(login, self.get_query_argument("client_id", None))}
        )


def _append(uri: str, query: dict[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(query)


def oauth_routes(prefix: str) -> Iterable[tuple[str, type[web.RequestHandler]]]:
    for pattern, handler in (
        (r"/.well-known/openid-configuration", OpenIdConfigurationHandler),
        (r"/user/login", SignInHandler),
        (r"/login/oauth/authorize", AuthorizeHandler),
        (r"/login/oauth/grant", GrantHandler),
        (r"/login/oauth/access_token", AccessTokenHandler),
        (r"/login/oauth/userinfo", UserInfoHandler),
    ):
        yield prefix + pattern, handler
