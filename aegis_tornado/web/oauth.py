"""The OAuth endpoints: registration, authorization with our own consent page, the Gitea
callback, token and revocation. Verbs only: the protocol is oauthlib's, the rest
:class:`~aegis_tornado.oauth.OAuthService`'s.

Browser legs are bound to the browser that started them: the consent handle and the Gitea
``state`` are single use, expire in 10 minutes, and are only accepted together with the cookie
set when they were created (``__Host-``, ``Secure``, ``HttpOnly``, ``SameSite=Lax`` over https).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

from oauthlib.oauth2.rfc6749 import errors as oauth_errors
from tornado import escape

from ..oauth import redirects
from ..oauth.cimd import CimdError
from ..oauth.gitea_login import GiteaLoginError, pkce_pair
from ..oauth.service import OAuthService, RegistrationError
from ..oauth.tokens import digest
from ..oauth.validator import canonical
from ..state.store import StateUnavailable
from .base import ApiError, BaseHandler

TRANSACTION_TTL = 600


class OAuthHandler(BaseHandler):
    public = True
    #: Answers a person's browser (HTML pages), not a client's code (JSON).
    browser_page = False

    def check_request(self) -> None:
        # After the gate's own checks, so a misplaced query key is still refused as such.
        if self.ctx.oauth is None:
            raise ApiError(404, f"No such endpoint: {self.request.path[:200]}")

    @property
    def oauth(self) -> OAuthService:
        oauth = self.ctx.oauth
        if oauth is None:
            raise ApiError(404, f"No such endpoint: {self.request.path[:200]}")
        return oauth

    def form(self) -> dict[str, str]:
        """The url-encoded body (bodies are streamed, so Tornado's parser never saw it)."""
        try:
            return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise ApiError(400, "The form is not valid UTF-8") from None

    def audit(self, event: str, failure: bool = False, **fields: Any) -> None:
        self.ctx.audit.oauth(event, failure=failure, client_ip=self.client_ip, **fields)

    def page(self, status: int, title: str, body_html: str) -> None:
        """An HTML page (consent, or an error that must not redirect anywhere)."""
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("X-Frame-Options", "DENY")
        # No form-action: browsers apply it to the redirect that follows the consent form
        # (to Gitea), which would block the sign-in. Nothing else may load or frame the page.
        self.set_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        self.finish(
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{escape.xhtml_escape(title)}</title></head><body>"
            f"<h1>{escape.xhtml_escape(title)}</h1>{body_html}</body></html>"
        )

    def error_page(self, status: int, message: str) -> None:
        self.page(status, "Sign-in failed", f"<p>{escape.xhtml_escape(message)}</p>")

    def redirect_to_client(self, redirect_uri: str, params: dict[str, str | None]) -> None:
        """Back to the client with ``iss`` (RFC 9207), the client's state, and the outcome."""
        query = {k: v for k, v in params.items() if v is not None}
        query["iss"] = self.oauth.issuer
        separator = "&" if "?" in redirect_uri else "?"
        self.redirect(redirect_uri + separator + urlencode(query))

    def cookie_name(self, kind: str, handle: str) -> str:
        name = f"aegis-{kind}-{digest(handle)[:16]}"
        return f"__Host-{name}" if self.oauth.secure_cookies else name

    def set_binding_cookie(self, kind: str, handle: str, binding: str) -> None:
        self.set_cookie(
            self.cookie_name(kind, handle),
            binding,
            path="/",
            httponly=True,
            secure=self.oauth.secure_cookies,
            samesite="Lax",
            expires_days=None,
            max_age=TRANSACTION_TTL,
        )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if not isinstance(exc, StateUnavailable):
            super().write_error(status_code, **kwargs)
            return
        # The OAuth state (or the per-IP rates) is in Redis and Redis cannot be reached: a
        # clear, retryable OAuth error, never a traceback and never a guess. The store logs
        # the outage once when it begins, not once per request.
        self.set_status(503)
        self.set_header("Retry-After", str(StateUnavailable.retry_after))
        if self.browser_page:
            self.error_page(503, "Sign-in is temporarily unavailable; try again in a moment.")
            return
        self.json_reply(
            503,
            {
                "error": "temporarily_unavailable",
                "error_description": "The authorization server is temporarily unavailable",
            },
            {"Retry-After": str(StateUnavailable.retry_after)},
        )

    def log_exception(self, typ, value, tb) -> None:
        if not isinstance(value, StateUnavailable):
            super().log_exception(typ, value, tb)

    def json_reply(self, status: int, body: str | dict, headers: dict[str, str] | None = None):
        self.set_status(status)
        for name, value in (headers or {}).items():
            if name.lower() not in ("content-type",):
                self.set_header(name, value)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(body if isinstance(body, str) else json.dumps(body))


class _CorsMixin(BaseHandler):
    """Token, registration and revocation are called by browser-based clients too."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.set_header("Access-Control-Allow-Methods", "POST, OPTIONS")

    def options(self) -> None:
        self.set_status(204)
        self.finish()


class RegisterHandler(_CorsMixin, OAuthHandler):
    async def post(self) -> None:
        oauth, ip = self.oauth, self.client_ip
        retry_after = await oauth.registrations.take(ip)  # every registration counts
        if retry_after is not None:
            self.audit("registration_rate_limited", failure=True)
            raise ApiError(
                429,
                "Too many client registrations; try again later",
                headers={"Retry-After": str(retry_after)},
            )
        try:
            registered = await oauth.register(self.json_body())
        except RegistrationError as error:
            self.audit("registration_refused", failure=True, reason=error.error)
            self.json_reply(400, {"error": error.error, "error_description": error.description})
            return
        self.audit(
            "client_registered",
            client_id=registered["client_id"],
            client_name=registered["client_name"][:80],
            redirect_hosts=sorted({_host(u) for u in registered["redirect_uris"]}),
        )
        self.json_reply(201, registered)


def _host(uri: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(uri).hostname or ""


class AuthorizeHandler(OAuthHandler):
    browser_page = True

    async def get(self) -> None:
        oauth = self.oauth
        client_id = self.get_query_argument("client_id", "")
        redirect_uri = self.get_query_argument("redirect_uri", "")
        state = self.get_query_argument("state", None)
        try:
            client = await oauth.client(client_id) if client_id else None
        except CimdError as error:
            self.audit("authorize_refused", failure=True, reason="client_metadata_document")
            self.error_page(400, str(error))
            return
        if client is None:
            self.audit("authorize_refused", failure=True, reason="unknown_client")
            self.error_page(400, "This application is not registered with this server.")
            return
        if not redirects.matches(client["redirect_uris"], redirect_uri) or (
            # A document's redirect URIs are the client's word; the trust policy still applies.
            client["kind"] == "cimd"
            and not redirects.registrable(redirect_uri, oauth.redirect_prefixes)
        ):
            # Never redirect to an unregistered URI (open redirect).
            self.audit(
                "authorize_refused", failure=True, reason="redirect_uri", client_id=client_id
            )
            self.error_page(400, "The redirect URI is not registered for this application.")
            return
        resource = self.get_query_argument("resource", None)
        if resource is not None and canonical(resource) != oauth.resource:
            self.audit(
                "authorize_refused", failure=True, reason="invalid_target", client_id=client_id
            )
            self.redirect_to_client(
                redirect_uri,
                {
                    "error": "invalid_target",
                    "error_description": "The resource is not this MCP server",
                    "state": state,
                },
            )
            return
        query = self.request.query
        try:
            scopes, _credentials = await oauth.validate_authorization(query)
        except oauth_errors.FatalClientError as error:
            self.audit("authorize_refused", failure=True, reason=error.error, client_id=client_id)
            self.error_page(400, error.description or "Invalid authorization request")
            return
        except oauth_errors.OAuth2Error as error:
            self.audit("authorize_refused", failure=True, reason=error.error, client_id=client_id)
            self.redirect_to_client(
                redirect_uri,
                {"error": error.error, "error_description": error.description, "state": state},
            )
            return
        retry_after = await oauth.authorizations.take(self.client_ip)
        if retry_after is not None:
            self.audit("authorize_rate_limited", failure=True, client_id=client_id)
            self.set_header("Retry-After", str(retry_after))
            self.error_page(429, "Too many sign-in attempts from your address; try again later.")
            return
        started = await oauth.begin(
            "consent",
            {
                "query": query,
                "scopes": scopes,
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "state": state,
                "resource": oauth.resource,
            },
            TRANSACTION_TTL,
        )
        if started is None:
            self.error_page(503, "Too many sign-ins are in progress; try again in a few minutes.")
            return
        handle, binding = started
        self.set_binding_cookie("consent", handle, binding)
        name = escape.xhtml_escape(client.get("client_name") or "Unnamed client")
        host = escape.xhtml_escape(_host(redirect_uri))
        loopback = (
            "<p><strong>Warning:</strong> this application runs on your own computer "
            "(a loopback address). Allow it only if you started it.</p>"
            if redirects.is_loopback(redirect_uri)
            else ""
        )
        self.page(
            200,
            "Allow access to your Gitea?",
            f"<p><strong>{name}</strong> wants to read your Gitea repositories, files and "
            f"issues through AegisGitea MCP, with <strong>your</strong> Gitea rights "
            f"(scope: {escape.xhtml_escape(' '.join(scopes))}; read only).</p>"
            f"<p>After you allow it, you will be sent to <strong>{host}</strong>.</p>{loopback}"
            '<form method="post" action="/oauth/consent">'
            f'<input type="hidden" name="handle" value="{escape.xhtml_escape(handle)}">'
            '<button type="submit" name="action" value="allow">Allow</button> '
            '<button type="submit" name="action" value="deny">Deny</button>'
            "</form>",
        )


class ConsentHandler(OAuthHandler):
    browser_page = True

    async def post(self) -> None:
        oauth = self.oauth
        form = self.form()
        handle = form.get("handle", "")
        if not handle:
            self.error_page(400, "The consent form is incomplete.")
            return
        cookie_name = self.cookie_name("consent", handle)
        data = await oauth.finish("consent", handle, self.get_cookie(cookie_name))
        self.clear_cookie(cookie_name, path="/")
        if data is None:
            self.audit("consent_refused", failure=True, reason="invalid_or_unbound_handle")
            self.error_page(
                400,
                "This consent page expired, was already used, or was opened in another "
                "browser. Start the sign-in again from your application.",
            )
            return
        if form.get("action") != "allow":
            self.audit("consent_denied", client_id=data["client_id"])
            self.redirect_to_client(
                data["redirect_uri"],
                {
                    "error": "access_denied",
                    "error_description": "The user denied access",
                    "state": data["state"],
                },
            )
            return
        verifier, challenge = pkce_pair()
        started = await oauth.begin("upstream", {**data, "verifier": verifier}, TRANSACTION_TTL)
        if started is None:
            self.error_page(503, "Too many sign-ins are in progress; try again in a few minutes.")
            return
        state, binding = started
        self.set_binding_cookie("upstream", state, binding)
        self.audit("consent_given", client_id=data["client_id"])
        self.redirect(oauth.gitea.authorize_url(state, challenge))


class CallbackHandler(OAuthHandler):
    browser_page = True

    async def get(self) -> None:
        oauth = self.oauth
        state = self.get_query_argument("state", "")
        if not state:
            self.error_page(400, "Gitea's answer has no state.")
            return
        cookie_name = self.cookie_name("upstream", state)
        data = await oauth.finish("upstream", state, self.get_cookie(cookie_name))
        self.clear_cookie(cookie_name, path="/")
        if data is None:
            self.audit("callback_refused", failure=True, reason="invalid_or_unbound_state")
            self.error_page(
                400,
                "This sign-in expired, was already completed, or was started in another "
                "browser. Start it again from your application.",
            )
            return
        client_id = data["client_id"]
        if self.get_query_argument("error", None) is not None:
            self.audit("gitea_denied", failure=True, client_id=client_id)
            self.redirect_to_client(
                data["redirect_uri"],
                {
                    "error": "access_denied",
                    "error_description": "Gitea sign-in was not completed",
                    "state": data["state"],
                },
            )
            return
        try:
            tokens = await oauth.gitea.exchange_code(
                self.get_query_argument("code", ""), data["verifier"]
            )
            user = await oauth.gitea.user(tokens.access_token)
        except GiteaLoginError as error:
            self.audit("gitea_login_failed", failure=True, client_id=client_id, error=error.error)
            self.error_page(502, "Gitea did not complete the sign-in. Try again.")
            return
        await oauth.vault.put(user.id, user.login, tokens)
        headers = await oauth.create_authorization(
            data["query"], data["scopes"], {"id": user.id, "login": user.login}, data["resource"]
        )
        self.audit("authorization_granted", client_id=client_id, gitea_user=user.login)
        location = headers["Location"]
        self.redirect(
            location + ("&" if "?" in location else "?") + urlencode({"iss": oauth.issuer})
        )


class TokenHandler(_CorsMixin, OAuthHandler):
    async def post(self) -> None:
        await self._respond(self.oauth.token_response)

    async def _respond(self, endpoint) -> None:
        limiter, shared, ip = self.ctx.limiter, self.ctx.shared_limiter, self.client_ip
        try:
            retry_after = (
                limiter.retry_after(ip) if shared is None else await shared.retry_after(ip)
            )
        except StateUnavailable:
            self._state_unavailable("limiter_check")  # audited; answered by write_error
            raise
        if retry_after is not None:
            # Guessing codes or refresh tokens is guessing keys: the same per-IP limit.
            self.audit("token_rate_limited", failure=True)
            self.json_reply(
                429,
                {"error": "slow_down", "error_description": "Too many failed attempts"},
                {"Retry-After": str(retry_after)},
            )
            return
        headers = {
            name: self.request.headers[name]
            for name in ("Authorization", "Content-Type")
            if name in self.request.headers
        }
        try:
            body = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "The form is not valid UTF-8") from None
        (reply_headers, reply_body, status), events = await endpoint(body, headers)
        for name, fields in events:
            failure = name.startswith("invalid") or name.endswith(("reused", "mismatch"))
            self.audit(name, failure=failure, **fields)
        if status >= 400:
            error = ""
            try:
                error = json.loads(reply_body).get("error", "")
            except (ValueError, AttributeError):
                pass
            self.audit(f"{self.request.path.rsplit('/', 1)[-1]}_refused", failure=True, error=error)
            try:
                outcome = (
                    limiter.record_failure(ip)
                    if shared is None
                    else await shared.record_failure(ip)
                )
            except StateUnavailable:
                self._state_unavailable("limiter_record")
                raise
            if outcome.blocked:
                self.ctx.audit.rate_limit_exceeded(
                    client_ip=ip,
                    failures=outcome.failures,
                    window=self.ctx.settings.auth_failure_window,
                )
        self.json_reply(status, reply_body or "{}", reply_headers)


class RevokeHandler(TokenHandler):
    async def post(self) -> None:
        await self._respond(self.oauth.revoke_response)


default_handlers = [
    (r"/oauth/register", RegisterHandler),
    (r"/oauth/authorize", AuthorizeHandler),
    (r"/oauth/consent", ConsentHandler),
    (r"/oauth/callback", CallbackHandler),
    (r"/oauth/token", TokenHandler),
    (r"/oauth/revoke", RevokeHandler),
]
