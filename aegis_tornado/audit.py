"""The audit trail: one JSON line per authentication decision and per tool call.

Field names and event names follow the authentication guide, so its grep recipes and
``scripts/auth_summary.sh`` count correctly:

- ``api_authentication``: every attempt to authenticate, ``status`` success or failure;
- ``access_denied``: every refused request, with ``reason`` invalid_api_key, missing_api_key,
  query_key_not_allowed or rate_limited;
- ``auth_rate_limit_exceeded``: once, when an IP becomes blocked;
- ``tool_call``: every tool call on any transport.

Keys are identified only by their hint (first 8 and last 4 characters) and configured name.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from .logs import AUDIT_LOGGER


class AuditLog:
    def __init__(self, on_auth: Callable[[str], None] | None = None) -> None:
        self._log = structlog.get_logger(AUDIT_LOGGER)
        #: Told every authentication outcome ("success" or the refusal's reason): metrics.
        self._on_auth = on_auth or (lambda outcome: None)

    def auth_success(
        self,
        *,
        client_ip: str,
        user_agent: str | None,
        key_hint: str,
        key_name: str | None,
        path: str,
        via: str,
    ) -> None:
        self._on_auth("success")
        self._log.info(
            "api_authentication",
            status="success",
            client_ip=client_ip,
            user_agent=user_agent,
            key_hint=key_hint,
            key_name=key_name,
            path=path,
            via=via,
        )

    def auth_failure(
        self, *, reason: str, client_ip: str, user_agent: str | None, path: str
    ) -> None:
        """A credential was presented (or required) and refused: the attempt and the denial."""
        self._log.warning(
            "api_authentication",
            status="failure",
            reason=reason,
            client_ip=client_ip,
            user_agent=user_agent,
            path=path,
        )
        self.access_denied(reason=reason, client_ip=client_ip, path=path)

    def access_denied(self, *, reason: str, client_ip: str, path: str, **extra) -> None:
        self._on_auth(reason)
        self._log.warning("access_denied", reason=reason, client_ip=client_ip, path=path, **extra)

    def rate_limit_exceeded(self, *, client_ip: str, failures: int, window: float) -> None:
        self._log.error(
            "auth_rate_limit_exceeded",
            severity="high",
            client_ip=client_ip,
            failures=failures,
            window=int(window) if float(window).is_integer() else window,
        )

    def tool_call(
        self,
        *,
        tool: str,
        transport: str,
        status: str,
        duration_ms: float,
        key_hint: str | None,
        client_ip: str,
        reason: str | None = None,
        gitea_user: str | None = None,
    ) -> None:
        fields = dict(
            tool=tool,
            transport=transport,
            status=status,
            duration_ms=round(duration_ms, 2),
            key_hint=key_hint,
            client_ip=client_ip,
        )
        if reason:
            fields["reason"] = reason
        if gitea_user:
            fields["gitea_user"] = gitea_user
        self._log.info("tool_call", **fields)

    def oauth(self, event: str, *, failure: bool = False, **fields) -> None:
        """An OAuth event (client registered, consent, token issued/refreshed/reused/revoked, or
        a failure), named ``oauth_<event>``. Fields name the Gitea login and the client id;
        never a token, code, state or secret."""
        log = self._log.warning if failure else self._log.info
        log(f"oauth_{event}", **fields)
