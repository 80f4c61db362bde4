"""The one base handler: request context, authentication, body limits and JSON errors.

Every route is authenticated in ``prepare()`` unless its handler says ``public = True``; there is
no other way to opt out. Bodies are streamed (``stream_request_body``) so that ``prepare()`` runs
as soon as the headers arrive: an unauthenticated or oversized request is refused before its body
is read.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import traceback
from dataclasses import dataclass, field
from typing import Any

import structlog
from tornado import httputil, iostream, web
from tornado.http1connection import HTTP1Connection

from .. import untrusted_json
from ..auth import scopes
from ..auth.keys import key_hint
from ..auth.limiter import FailureOutcome
from ..context import AppContext
from ..gitea.credentials import REQUEST_CREDENTIALS
from ..oauth.tokens import digest as oauth_digest
from ..oauth.tokens import is_oauth_access_token
from ..state.store import StateUnavailable

log = structlog.get_logger("aegis.http")

# Only HTTP's own spacing (space, tab) separates the scheme and surrounds the key: any other
# character, Unicode spaces included, is part of what was presented and compared exactly.
_BEARER = re.compile(r"\A[ \t]*Bearer[ \t]+(?P<key>[\x21-\x7e]+)[ \t]*\Z", re.IGNORECASE | re.ASCII)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: A refused request's body up to this size is read and discarded, so that its keep-alive
#: connection survives the refusal; a larger one is not read and the connection closes.
DRAIN_BYTES = 64 * 1024


class _RequestIds:
    """Request ids this process makes up: 32 letters and digits, a random per-process prefix, an
    ``x``, and a counter (``b924d2560992x0000000000000000e28``).

    Unique within the process and, with 48 random bits per process (drawn again in a forked
    worker), across processes and restarts. Cheaper than ``uuid4`` (no ``urandom`` per request),
    and the ``x`` keeps its hex runs short of 32 digits, the shortest the log scrubber hashes as
    a possible API key: a ``uuid4`` hex id was hashed on each of the 3 lines of every call.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._numbers = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}x{next(self._numbers):019x}"


new_request_id = _RequestIds()


class ApiError(web.HTTPError):
    """An HTTP error whose ``message`` is safe and useful to show the client.

    ``headers`` survive Tornado's clearing of headers on error (``Retry-After``,
    ``WWW-Authenticate``); ``body`` replaces the standard ``{"status", "message"}`` JSON body
    when a protocol needs its own error shape (JSON-RPC).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ):
        super().__init__(status, message.replace("%", "%%"))
        self.message = message
        self.headers = headers or {}
        self.body = body


@dataclass(frozen=True)
class Caller:
    """Who made the request, as far as logs and session binding need to know."""

    key_hint: str | None  # first 8 + last 4 characters of the presented key
    key_name: str | None  # name given to the key in the config, if any
    key_id: str  # stable, non-secret identity of the key (digest prefix); "anonymous" without auth
    via: str | None  # "header", "query" or "oauth"; None when authentication is disabled
    #: OAuth callers: the Gitea login and the client, and the source of the user's own Gitea
    #: token (every Gitea call of the request uses it instead of the server's token).
    gitea_user: str | None = None
    client_id: str | None = None
    gitea_credentials: Any = field(default=None, compare=False, repr=False)


ANONYMOUS = Caller(key_hint=None, key_name=None, key_id="anonymous", via=None)


@web.stream_request_body
class BaseHandler(web.RequestHandler):
    #: No authentication at all. Only ``/health`` sets this.
    public = False
    #: The ``api_key`` query parameter is accepted here (ChatGPT's UI cannot send headers).
    query_key_allowed = False
    #: Set when authentication refused the request (already audited: the access line is debug).
    refused_at_gate = False

    def initialize(self) -> None:
        self._body_parts: list[bytes] = []
        self._body_size = 0
        self._caller: Caller | None = None
        self._client_ip: str | None = None
        self._tracked = False

    # --- context ---------------------------------------------------------------------------

    @property
    def ctx(self) -> AppContext:
        return self.settings["aegis"]

    @property
    def caller(self) -> Caller:
        if self._caller is None:
            raise RuntimeError("caller read before prepare() authenticated the request")
        return self._caller

    @property
    def client_ip(self) -> str:
        if self._client_ip is None:
            self._client_ip = self.ctx.client_ips.resolve(
                self.request.remote_ip or "", self.request.headers
            )
        return self._client_ip

    def set_default_headers(self) -> None:
        # Survive error handling; these responses are API data, never pages to render or cache.
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        self.clear_header("Server")

    # --- lifecycle -------------------------------------------------------------------------

    async def prepare(self) -> None:
        self._tracked = True
        self.ctx.requests.started()
        request_id = self.request.headers.get("X-Request-Id", "")
        if not _REQUEST_ID.match(request_id):
            request_id = new_request_id()
        self.request_id = request_id
        self.set_header("X-Request-Id", request_id)
        structlog.contextvars.clear_contextvars()
        scopes.enter(None)  # set again below once a scoped key is matched
        structlog.contextvars.bind_contextvars(
            request_id=request_id,
            client_ip=self.client_ip,
            method=self.request.method,
            path=self.request.path,
        )
        if self.ctx.requests.shutting_down:
            # Keep-alive connections outlive the listening socket: refuse new work on them so
            # the drain ends, and close them so clients reconnect (to another instance).
            await self._refuse_and_close(
                503, "The server is shutting down; retry shortly", {"Retry-After": "1"}
            )
            raise web.Finish()
        try:
            if self.public:
                if self.ctx.settings.auth_enabled:
                    self._refuse_misplaced_query_key()
                self._caller = ANONYMOUS
            else:
                # An OAuth access token is told from an API key by its prefix, never by trying
                # one kind and then the other.
                oauth_token = self._presented_oauth_token()
                if self.ctx.shared_limiter is not None and self.ctx.settings.auth_enabled:
                    await self._check_shared_limit()
                if oauth_token is not None:
                    await self._authenticate_oauth(oauth_token)
                else:
                    self._authenticate()
        except ApiError as refusal:
            self.refused_at_gate = True  # audited already: the access line is debug
            if self._failure_pending:
                refusal = await self._record_shared_failure(refusal)
            await self._refuse(refusal)
            return
        await self._check_declared_body_size()
        try:
            self.check_request()
        except ApiError as refusal:
            await self._refuse(refusal)

    def check_request(self) -> None:
        """Checks a route adds to the gate's, once the caller is known; raise ``ApiError``."""

    async def _refuse(self, refusal: ApiError) -> None:
        """Refuse the request without losing the connection.

        Answering before the body is read makes Tornado close the connection with the body
        unread, and a keep-alive client then loses its next request (a reset, or "closed
        without response"). So a body of at most ``DRAIN_BYTES`` is read and thrown away
        first, and the refusal answered in place of the verb; a larger or chunked body is
        refused at once with ``Connection: close``, rather than read.
        """
        self._body_size = -1  # whatever arrives is discarded
        length = self.request.headers.get("Content-Length")
        chunked = "Transfer-Encoding" in self.request.headers
        try:
            small = length is None or int(length) <= DRAIN_BYTES
        except ValueError:
            small = False
        if small and not chunked:
            # Tornado reads the body, then calls the verb: answer the refusal there.
            setattr(self, self.request.method.lower(), lambda *_, **__: self._answer(refusal))
            return
        self.set_header("Connection", "close")
        self._answer(refusal)
        raise web.Finish()

    def _answer(self, refusal: ApiError) -> None:
        # Refusals are the commonest error, and a flood of them is an attack: answer directly
        # rather than through Tornado's exception path (send_error, clear()).
        self.set_status(refusal.status_code)
        self.write_error(refusal.status_code, exc_info=(ApiError, refusal, None))

    def _untrack(self) -> None:
        if self._tracked:
            self._tracked = False
            self.ctx.requests.finished()

    def on_finish(self) -> None:
        self._untrack()

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self._untrack()

    def tcp_stream(self) -> iostream.IOStream | None:
        """The request's TCP stream, or None once Tornado has let go of it (Tornado types
        ``request.connection`` as the abstract HTTPConnection, which has no stream)."""
        connection = self.request.connection
        return connection.stream if isinstance(connection, HTTP1Connection) else None

    def client_gone(self) -> bool:
        """The client closed the connection (nothing more can be written to it)."""
        stream = self.tcp_stream()
        return stream is None or stream.closed()

    async def data_received(self, chunk: bytes) -> None:
        if self._body_size < 0:
            return  # already refused
        self._body_size += len(chunk)
        if self._body_size > self.ctx.settings.max_body_bytes:
            # A chunked body grew past the limit: answer now and stop reading.
            self._body_parts.clear()
            await self._refuse_body_too_large()
            return
        self._body_parts.append(chunk)

    @property
    def body(self) -> bytes:
        """The request body, assembled once it has been fully received."""
        if len(self._body_parts) != 1:
            self._body_parts = [b"".join(self._body_parts)]
        return self._body_parts[0]

    def json_body(self) -> Any:
        """The body parsed as strict JSON (400 when it is not), after a content-type check (415)."""
        self.require_json_content_type()
        try:
            return untrusted_json.decode(self.body)
        except untrusted_json.UnacceptableJson as error:
            raise ApiError(400, f"Request body is not valid JSON: {error.message}") from None

    def has_json_content_type(self) -> bool:
        content_type = self.request.headers.get("Content-Type", "")
        return content_type.split(";", 1)[0].strip().lower() == "application/json"

    def require_json_content_type(self) -> None:
        if not self.has_json_content_type():
            raise ApiError(415, "Content-Type must be application/json")

    # --- authentication --------------------------------------------------------------------
    # The failed-auth limiter is in this process (``ctx.limiter``, called synchronously: no
    # await on the hot path) or shared in Redis (``ctx.shared_limiter``, STATE_URL): then the
    # block is checked in prepare() before authenticating, and a failure noted by
    # ``_count_failure`` is recorded there once the refusal is raised.

    _failure_pending = False

    def _refuse_if_rate_limited(self, retry_after: int | None) -> None:
        if retry_after is None:
            return
        self.ctx.audit.access_denied(
            reason="rate_limited",
            client_ip=self.client_ip,
            path=self.request.path,
            retry_after=retry_after,
        )
        raise ApiError(
            429,
            "Too many failed authentication attempts; try again later",
            headers={"Retry-After": str(retry_after)},
        )

    def _count_failure(self, ip: str) -> FailureOutcome | None:
        """Count a failed authentication; None when it is recorded later, in the shared store."""
        if self.ctx.shared_limiter is None:
            return self.ctx.limiter.record_failure(ip)
        self._failure_pending = True
        return None

    def _state_unavailable(self, during: str) -> ApiError:
        """Fail closed: without the shared store no block can be checked or recorded, so the
        request is refused rather than let an unchecked guess through."""
        self.ctx.audit.access_denied(
            reason="state_unavailable",
            client_ip=self.client_ip,
            path=self.request.path,
            during=during,
        )
        return ApiError(
            503,
            "Authentication is temporarily unavailable; try again shortly",
            headers={"Retry-After": str(StateUnavailable.retry_after)},
        )

    async def _check_shared_limit(self) -> None:
        assert self.ctx.shared_limiter is not None
        try:
            retry_after = await self.ctx.shared_limiter.retry_after(self.client_ip)
        except StateUnavailable:
            raise self._state_unavailable("limiter_check") from None
        self._refuse_if_rate_limited(retry_after)

    async def _record_shared_failure(self, refusal: ApiError) -> ApiError:
        """Records the failure noted while authenticating; the refusal to answer with."""
        ctx, ip = self.ctx, self.client_ip
        assert ctx.shared_limiter is not None
        self._failure_pending = False
        try:
            outcome = await ctx.shared_limiter.record_failure(ip)
        except StateUnavailable:
            return self._state_unavailable("limiter_record")
        if outcome.blocked:
            ctx.audit.rate_limit_exceeded(
                client_ip=ip, failures=outcome.failures, window=ctx.settings.auth_failure_window
            )
        return refusal

    def _authenticate(self) -> None:
        ctx = self.ctx
        if not ctx.settings.auth_enabled:
            self._caller = ANONYMOUS
            return
        path = self.request.path
        ip = self.client_ip
        user_agent = self.request.headers.get("User-Agent")

        if ctx.shared_limiter is None:  # shared: checked in prepare(), which may await
            self._refuse_if_rate_limited(ctx.limiter.retry_after(ip))

        presented = self._presented_key(ip, user_agent)
        if presented is None:
            ctx.audit.auth_failure(
                reason="missing_api_key", client_ip=ip, user_agent=user_agent, path=path
            )
            raise self._unauthorized(
                "Missing API key: send the header 'Authorization: Bearer <key>'"
            )
        key, via = presented
        match = ctx.keyring.match(key)
        if match is None:
            outcome = self._count_failure(ip)
            ctx.audit.auth_failure(
                reason="invalid_api_key", client_ip=ip, user_agent=user_agent, path=path
            )
            if outcome is not None and outcome.blocked:
                ctx.audit.rate_limit_exceeded(
                    client_ip=ip, failures=outcome.failures, window=ctx.settings.auth_failure_window
                )
            raise self._unauthorized("Invalid API key", error="invalid_token")
        self._check_key_scope(match.scope, ip, user_agent, path)
        hint = key_hint(key)
        self._caller = Caller(key_hint=hint, key_name=match.name, key_id=match.digest[:16], via=via)
        structlog.contextvars.bind_contextvars(key_hint=hint)
        ctx.audit.auth_success(
            client_ip=ip,
            user_agent=user_agent,
            key_hint=hint,
            key_name=match.name,
            path=path,
            via=via or "header",  # a matched key was presented one way or the other
        )

    def _check_key_scope(self, scope, ip: str, user_agent: str | None, path: str) -> None:
        """A matched key may still be refused by its own scope (expired, or used from outside
        its allowed_ips); otherwise its scope holds for the rest of the request."""
        reason = scopes.gate_refusal(scope, ip)
        if reason == "expired_api_key":
            self.ctx.audit.auth_failure(
                reason=reason, client_ip=ip, user_agent=user_agent, path=path
            )
            raise self._unauthorized("API key expired", error="invalid_token")
        if reason is not None:
            # Answered as an invalid key: a stolen key learns nothing from another network.
            self._count_failure(ip)
            self.ctx.audit.auth_failure(
                reason=reason, client_ip=ip, user_agent=user_agent, path=path
            )
            raise self._unauthorized("Invalid API key", error="invalid_token")
        scopes.enter(scope)

    def _check_oauth_scope(
        self, login: str, client_id: str, ip: str, user_agent: str | None, path: str
    ) -> None:
        """The OAUTH_SCOPES of the user and of the client, intersected, enter the request as a
        key's scope does (same gate after this: out-of-scope repositories are "not found")."""
        scope = self.ctx.oauth_scopes.for_caller(login, client_id)
        reason = scopes.gate_refusal(scope, ip)
        if reason is not None:
            reason = "oauth_scope_expired" if reason == "expired_api_key" else reason
            if reason == "ip_not_allowed":
                self._count_failure(ip)
            self.ctx.audit.auth_failure(
                reason=reason, client_ip=ip, user_agent=user_agent, path=path
            )
            raise self._unauthorized(
                "Invalid, expired or revoked access token; sign in again", error="invalid_token"
            )
        scopes.enter(scope)

    def _presented_oauth_token(self) -> str | None:
        if self.ctx.oauth is None or not self.ctx.settings.auth_enabled:
            return None
        match = _BEARER.match(self.request.headers.get("Authorization", ""))
        if match is None or not is_oauth_access_token(match.group("key")):
            return None
        return match.group("key")

    async def _authenticate_oauth(self, token: str) -> None:
        ctx = self.ctx
        path, ip = self.request.path, self.client_ip
        user_agent = self.request.headers.get("User-Agent")
        self._refuse_misplaced_query_key()
        if ctx.shared_limiter is None:  # shared: checked in prepare(), which may await
            self._refuse_if_rate_limited(ctx.limiter.retry_after(ip))
        try:
            grant = await ctx.oauth.authenticate(token)
        except StateUnavailable:
            raise self._state_unavailable("oauth_token_check") from None
        if grant is None:
            # Counted like a bad key: guessing tokens is guessing keys.
            outcome = self._count_failure(ip)
            ctx.audit.auth_failure(
                reason="invalid_oauth_token", client_ip=ip, user_agent=user_agent, path=path
            )
            if outcome is not None and outcome.blocked:
                ctx.audit.rate_limit_exceeded(
                    client_ip=ip, failures=outcome.failures, window=ctx.settings.auth_failure_window
                )
            raise self._unauthorized(
                "Invalid, expired or revoked access token; sign in again", error="invalid_token"
            )
        self._check_oauth_scope(grant.gitea_login, grant.client_id, ip, user_agent, path)
        identity = oauth_digest(f"oauth:{grant.gitea_user_id}:{grant.client_id}")[:16]
        self._caller = Caller(
            key_hint=None,
            key_name=None,
            key_id=f"oauth-{identity}",
            via="oauth",
            gitea_user=grant.gitea_login,
            client_id=grant.client_id,
            gitea_credentials=grant.credentials,
        )
        # Every Gitea call made for this request (and the tasks it starts) uses the user's token.
        REQUEST_CREDENTIALS.set(grant.credentials)
        structlog.contextvars.bind_contextvars(gitea_user=grant.gitea_login)
        ctx.audit.oauth(
            "access",
            client_ip=ip,
            gitea_user=grant.gitea_login,
            client_id=grant.client_id,
            path=path,
        )

    def _refuse_misplaced_query_key(self) -> None:
        """401 for ``?api_key=`` where it is not accepted (public routes included), even when
        valid: keys in URLs end up in proxy logs and browser history."""
        if self.query_key_allowed or "api_key" not in self.request.query_arguments:
            return
        self.ctx.audit.auth_failure(
            reason="query_key_not_allowed",
            client_ip=self.client_ip,
            user_agent=self.request.headers.get("User-Agent"),
            path=self.request.path,
        )
        raise self._unauthorized(
            "The api_key query parameter is only accepted on /mcp/tools, /mcp/tool/call and "
            "/mcp/sse; send the header 'Authorization: Bearer <key>' instead (a client that "
            "can only be given a URL connects to /mcp/sse?api_key=<key>, the legacy HTTP+SSE "
            "transport)"
        )

    def _presented_key(self, ip: str, user_agent: str | None) -> tuple[str, str] | None:
        """The key the caller presented and how (header or query), or None: the header
        decides when both are present."""
        self._refuse_misplaced_query_key()
        has_query_key = "api_key" in self.request.query_arguments
        header = self.request.headers.get("Authorization")
        if header is not None:
            match = _BEARER.match(header)
            return (match.group("key"), "header") if match else None
        if has_query_key:
            values = self.request.query_arguments["api_key"]
            return (values[-1].decode("utf-8", "replace"), "query") if values else None
        return None

    def _unauthorized(self, message: str, error: str | None = None) -> ApiError:
        if self.ctx.oauth is not None:
            # Where OAuth clients discover how to sign in (RFC 9728 §5.1).
            challenge = self.ctx.oauth.challenge(error)
            if message.startswith("Missing API key"):
                message = (
                    "Missing credentials: sign in with OAuth, or send the header "
                    "'Authorization: Bearer <key>'"
                )
        else:
            challenge = 'Bearer realm="aegis-gitea-mcp"'
            if error:
                challenge += f', error="{error}"'
        return ApiError(401, message, headers={"WWW-Authenticate": challenge})

    async def _check_declared_body_size(self) -> None:
        length = self.request.headers.get("Content-Length")
        if length is None:
            return
        try:
            too_large = int(length) > self.ctx.settings.max_body_bytes
        except ValueError:
            raise ApiError(400, "Content-Length is not a number") from None
        if too_large:
            await self._refuse_body_too_large()
            raise web.Finish()

    async def _refuse_body_too_large(self) -> None:
        """Answer 413 and close the connection, so the rest of the body is never read."""
        self._body_size = -1
        limit = self.ctx.settings.max_body_bytes
        await self._refuse_and_close(413, f"Request body too large; the limit is {limit} bytes")

    async def _refuse_and_close(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Answer with a JSON error, then close the connection."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        try:
            await self.finish(json.dumps({"status": status, "message": message}))
        except iostream.StreamClosedError:
            pass
        stream = self.tcp_stream()
        if stream is not None and not stream.closed():
            stream.close()

    # --- errors ----------------------------------------------------------------------------

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.clear_header("Content-Length")
        if isinstance(exc, ApiError):
            for name, value in exc.headers.items():
                self.set_header(name, value)
            if exc.body is not None:
                self.finish(json.dumps(exc.body))
                return
            message = exc.message
        elif isinstance(exc, web.HTTPError) and exc.reason:
            message = exc.reason
        else:
            message = httputil.responses.get(status_code, "Error")
            if status_code >= 500:
                message = "Internal server error; the incident has been logged"
        self.finish(json.dumps({"status": status_code, "message": message}))

    def log_exception(self, typ, value, tb) -> None:
        """Log errors without the request URI: its query may hold an api_key."""
        if isinstance(value, web.HTTPError):
            if value.status_code >= 500:
                log.error("http_error", status=value.status_code, reason=value.log_message)
            return
        if isinstance(value, iostream.StreamClosedError):
            log.info("client_disconnected")
            return
        log.error(
            "unhandled_exception",
            error_type=typ.__name__ if typ else None,
            traceback="".join(traceback.format_exception(typ, value, tb)),
        )


#: One logger for every access line (``get_logger`` per request built a new one each time,
#: which structlog's logger cache cannot help).
_access_log = structlog.get_logger("aegis.access")


def request_log_function(handler: web.RequestHandler) -> None:
    """Tornado's access log, replaced: one JSON line per request, query values not included."""
    status = handler.get_status()
    request = handler.request
    fields = dict(
        status=status,
        method=request.method,
        path=request.path,
        duration_ms=round(1000.0 * request.request_time(), 2),
        client_ip=getattr(handler, "_client_ip", None) or request.remote_ip,
        query_keys=sorted(request.query_arguments) or None,
    )
    access = _access_log
    if (request.path == "/health" and status < 400) or getattr(handler, "refused_at_gate", False):
        # Health probes, and refusals the audit log already records (twice): at debug, so a
        # flood of bad keys costs two lines each, not three.
        access.debug("http_request", **fields)
    elif status >= 500:
        access.error("http_request", **fields)
    elif status >= 400:
        access.warning("http_request", **fields)
    else:
        access.info("http_request", **fields)
