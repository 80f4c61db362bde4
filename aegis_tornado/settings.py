"""Settings: each declared once, as a field of ``Settings``; read from five sources.

Precedence, highest first (the one place it is written down; README and .env.example point here):

1. command-line flags (``aegis-mcp --host/--port``);
2. the process environment (``GITEA_URL=... aegis-mcp``, docker compose's ``env_file``);
3. the ``.env`` file: ``./.env`` in the working directory when it exists, or the file that
   ``--env-file`` names (which must exist). It is read with python-dotenv and never changes the
   process environment; a variable set in the environment wins over the same one in ``.env``;
4. the YAML file named by ``--config`` (or ``AEGIS_CONFIG``), keyed by setting name;
5. the defaults declared below.

``load_settings`` returns a frozen ``Settings`` of plain values, or raises ``ConfigError`` whose
message is a single line naming the setting and what is wrong with it, never a secret's value.
Objects built from settings (the access policies, the key and OAuth scopes, the Gitea client)
are built in ``assembly.py``, so this module imports nothing of the layers above it: the only
package module it reads is ``auth.keys`` (stdlib only: the key format, so that a configured key
is held as its digest from the moment it is read).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import yaml
from dotenv import dotenv_values

from .auth.keys import DIGEST_PREFIX, ConfiguredKey, KeyFormatError, parse_key

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

#: The scope fields a key entry (and an OAUTH_SCOPES entry) may carry besides
#: key/sha256/name/created. What they mean, and what makes one valid, is ``auth.scopes``'s; the
#: scopes are built from these plain values in ``assembly.py``.
SCOPE_FIELDS = frozenset({"repos", "tools", "sensitive_paths", "expires", "allowed_ips"})


class ConfigError(Exception):
    """Invalid configuration: start-up stops with exit status 2 and this one-line message."""


# --- value parsers --------------------------------------------------------------------------
# Each takes the raw value (a string from the environment, or any YAML value) and returns the
# typed value or raises ValueError with a message that does not repeat secret values.


def _as_str(raw: Any) -> str:
    if isinstance(raw, (dict, list)):
        raise ValueError("must be a single value, not a list or mapping")
    return str(raw).strip()


def _as_optional_str(raw: Any) -> str | None:
    value = _as_str(raw) if raw is not None else ""
    return value or None


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = _as_str(raw).lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _int_between(low: int, high: int | None = None) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        if isinstance(raw, bool):
            raise ValueError("must be a whole number")
        try:
            value = int(_as_str(raw)) if not isinstance(raw, int) else raw
        except ValueError:
            raise ValueError("must be a whole number") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be {bounds}")
        return value

    return parse


def _seconds(minimum: float) -> Callable[[Any], float]:
    def parse(raw: Any) -> float:
        if isinstance(raw, bool):
            raise ValueError("must be a number of seconds")
        try:
            value = float(_as_str(raw)) if not isinstance(raw, (int, float)) else float(raw)
        except ValueError:
            raise ValueError("must be a number of seconds") from None
        if not math.isfinite(value) or value < minimum:
            raise ValueError(f"must be a number of seconds, at least {minimum:g}")
        return value

    return parse


def _as_list(raw: Any) -> list[str]:
    """A comma-separated string (environment) or a YAML list."""
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else _as_str(raw).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _as_url(raw: Any) -> str | None:
    value = _as_optional_str(raw)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("must not contain credentials; use GITEA_TOKEN")
    if parts.query or parts.fragment:
        raise ValueError("must not contain a query or fragment")
    return value.rstrip("/")


def _as_log_level(raw: Any) -> str:
    value = _as_str(raw).lower()
    if value not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return value


def ip_networks(items: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """IP addresses or CIDR networks (host bits allowed), as networks; ValueError naming the
    first that is neither. Shared with the ``allowed_ips`` of scopes: one reading of a range."""
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"'{item[:60]}' is not an IP address or CIDR network") from None
    return tuple(networks)


def _as_networks(raw: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return ip_networks(_as_list(raw))


def _as_header_name(raw: Any) -> str:
    value = _as_str(raw)
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}", value):
        raise ValueError("must be one HTTP header name, like X-Forwarded-For")
    return value


def _as_origins(raw: Any) -> tuple[str, ...]:
    origins = []
    for item in _as_list(raw):
        parts = urlsplit(item)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
        ):
            raise ValueError(f"'{item[:60]}' is not an origin like https://chat.example.com")
        origins.append(item.rstrip("/").lower())
    return tuple(origins)


def _as_tuple(raw: Any) -> tuple[str, ...]:
    return tuple(_as_list(raw))


def _as_optional_tuple(raw: Any) -> tuple[str, ...] | None:
    """A list, or None when unset or empty (the consumer's own default applies)."""
    return tuple(_as_list(raw)) or None


def _as_date(raw: Any) -> date | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(_as_str(raw)[:10])
    except ValueError:
        raise ValueError("created must be a date like 2026-11-01") from None


def _as_optional_port(raw: Any) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    return _int_between(0, 65535)(raw)


def _as_metrics_key(raw: Any) -> ConfiguredKey | None:
    value = _as_optional_str(raw)
    if value is None:
        return None
    try:
        return parse_key(value, name="metrics")
    except KeyFormatError as error:
        raise ValueError(str(error)) from None


def key_entry(entry: Any) -> tuple[str, str | None, date | None]:
    """One configured key entry as (value, name, created).

    An entry is a string (a key or ``sha256:<digest>``) or, in YAML, a mapping with exactly one
    of ``key`` or ``sha256`` and optional ``name`` and ``created``. The value still has to pass
    ``parse_key``. Shared with ``scripts/check_key_age.py``: one reading of key entries.
    Raises ValueError whose message never contains the key.
    """
    if isinstance(entry, str):
        return entry, None, None
    if not isinstance(entry, dict):
        raise ValueError("must be a string or a mapping with 'key' or 'sha256'")
    unknown = set(entry) - {"key", "sha256", "name", "created", *SCOPE_FIELDS}
    if unknown:
        raise ValueError(f"has unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    if ("key" in entry) == ("sha256" in entry):
        raise ValueError("needs exactly one of 'key' or 'sha256'")
    raw = entry["key"] if "key" in entry else entry["sha256"]
    if not isinstance(raw, str):
        field_name = "key" if "key" in entry else "sha256"
        raise ValueError(f"'{field_name}' must be a quoted string")
    value = raw if "key" in entry or raw.startswith(DIGEST_PREFIX) else DIGEST_PREFIX + raw.strip()
    return value, _as_optional_str(entry.get("name")), _as_date(entry.get("created"))


def parse_key_entry(entry: Any) -> ConfiguredKey:
    """A configured key entry (see ``key_entry``) validated; ValueError without the key."""
    value, name, created = key_entry(entry)
    return parse_key(value, name=name, created=created)


def _as_keys(raw: Any) -> tuple[ConfiguredKey, ...]:
    """Keys from MCP_API_KEYS (comma-separated) or YAML (strings or mappings with metadata)."""
    if raw is None:
        return ()
    entries = raw if isinstance(raw, list) else _as_list(raw)
    keys = []
    for number, entry in enumerate(entries, start=1):
        try:
            key = parse_key_entry(entry)
            if isinstance(entry, dict) and SCOPE_FIELDS & set(entry):
                fields = {name: entry[name] for name in SCOPE_FIELDS if name in entry}
                key = dataclasses.replace(key, scope_fields=fields)
            keys.append(key)
        except ValueError as error:  # KeyFormatError is a ValueError
            raise ValueError(f"key #{number} {error}") from None
    return tuple(keys)


def _as_oauth_scopes(raw: Any) -> dict[str, Any] | None:
    """Scopes for OAuth users and clients: a YAML mapping (from the environment, the same
    mapping written as YAML or JSON), kept as the plain mapping; ``assembly.build_oauth_scopes``
    builds and checks the scopes in it. None when unset or empty."""
    if isinstance(raw, str):
        try:
            raw = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ValueError("must be a YAML or JSON mapping") from None
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        raise ValueError("must be a mapping with 'users' and/or 'clients'")
    return raw


#: The only Gitea scope string the server asks for: a misspelt or OIDC-only scope makes Gitea
#: grant *every* scope (reference §3.6), so anything else refuses to start.
GITEA_OAUTH_SCOPES = "read:user read:repository read:issue"

#: Redirect URIs admitted for dynamically registered clients besides loopback ones: ChatGPT's
#: per-connector callback and its legacy one, Claude's callback on both of its domains.
DEFAULT_OAUTH_REDIRECT_PREFIXES = (
    "https://chatgpt.com/connector/oauth/",
    "https://chatgpt.com/connector_platform_oauth_redirect",
    "https://claude.ai/api/mcp/auth_callback",
    "https://claude.com/api/mcp/auth_callback",
)
#: Hosts whose Client ID Metadata Documents are fetched (ChatGPT's).
DEFAULT_OAUTH_CIMD_HOSTS = ("chatgpt.com",)
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def _as_public_url(raw: Any) -> str | None:
    """The server's external URL: https, except for loopback hosts (tests, the demo)."""
    value = _as_url(raw)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" and (parts.hostname or "").lower() not in LOOPBACK_HOSTS:
        raise ValueError("must be an https:// URL (http only for 127.0.0.1, ::1 or localhost)")
    return value


def _as_state_url(raw: Any) -> str | None:
    value = _as_optional_str(raw)
    if value is None:
        return None
    # Never echo the value: a Redis URL may carry a password.
    if urlsplit(value).scheme not in ("redis", "rediss") or not urlsplit(value).hostname:
        raise ValueError("must be a redis:// or rediss:// URL with a host")
    return value


def _as_gitea_scopes(raw: Any) -> str:
    value = " ".join(_as_str(raw).split())
    if sorted(value.split(" ")) != sorted(GITEA_OAUTH_SCOPES.split(" ")):
        raise ValueError(
            f"must be exactly '{GITEA_OAUTH_SCOPES}': Gitea grants every scope for a misspelt "
            "or OpenID-only scope string"
        )
    return value


def _as_url_prefixes(raw: Any) -> tuple[str, ...]:
    prefixes = []
    for item in _as_list(raw):
        parts = urlsplit(item)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"'{item[:60]}' is not an https:// URL prefix")
        prefixes.append(item)
    return tuple(prefixes)


def _as_hostnames(raw: Any) -> tuple[str, ...]:
    hosts = []
    for item in _as_list(raw):
        if not all(part.isalnum() or "-" in part for part in item.split(".")) or "/" in item:
            raise ValueError(f"'{item[:60]}' is not a host name")
        hosts.append(item.lower())
    return tuple(hosts)


# --- the settings: each declared once -------------------------------------------------------


def setting(
    env: str, parse: Callable[[Any], Any], default: Any, help: str, *, secret: bool = False
) -> Any:
    """One setting: a dataclass field whose metadata says where it comes from and how it is
    read. ``Settings`` below is the only list of settings; ``SCHEMA`` is derived from it."""
    return field(
        default=default,
        repr=not secret,
        metadata={"env": env, "parse": parse, "help": help, "secret": secret},
    )


@dataclass(frozen=True)
class Settings:
    """Plain, validated values. Policies and clients are built from them in ``assembly.py``."""

    # Gitea
    gitea_url: str | None = setting(
        "GITEA_URL",
        _as_url,
        None,
        "Base URL of the Gitea instance. Unset: serve the built-in demo Gitea.",
    )
    gitea_token: str | None = setting(
        "GITEA_TOKEN",
        _as_optional_str,
        None,
        "Token of the server's own Gitea bot account (read scopes only). Required with "
        "GITEA_URL unless GITEA_ANONYMOUS is true.",
        secret=True,
    )
    gitea_anonymous: bool = setting(
        "GITEA_ANONYMOUS",
        _as_bool,
        False,
        "Read GITEA_URL without a token, as an anonymous visitor: public repositories only.",
    )
    gitea_public_url: str | None = setting(
        "GITEA_PUBLIC_URL",
        _as_url,
        None,
        "Web address of Gitea used in links given to clients (default: GITEA_URL).",
    )
    gitea_timeout: float = setting(
        "GITEA_TIMEOUT",
        _seconds(0.1),
        10.0,
        "Seconds allowed for each Gitea request (connect and read).",
    )
    gitea_retries: int = setting(
        "GITEA_RETRIES",
        _int_between(0, 10),
        2,
        "Retries for idempotent Gitea requests that failed transiently.",
    )
    gitea_pool_size: int = setting(
        "GITEA_POOL_SIZE",
        _int_between(1, 256),
        16,
        "Keep-alive connections to Gitea, and Gitea calls in flight at once.",
    )
    # Listening
    host: str = setting("MCP_HOST", _as_str, "127.0.0.1", "Address to listen on.")
    port: int = setting("MCP_PORT", _int_between(0, 65535), 8080, "TCP port to listen on.")
    # Authentication
    api_keys: tuple[ConfiguredKey, ...] = setting(
        "MCP_API_KEYS",
        _as_keys,
        (),
        "Accepted API keys, comma-separated (hex, 64 characters; or sha256:<digest>).",
        secret=True,
    )
    auth_enabled: bool = setting(
        "AUTH_ENABLED",
        _as_bool,
        True,
        "Require an API key on every non-public route. Disable only for isolated testing.",
    )
    max_auth_failures: int = setting(
        "MAX_AUTH_FAILURES",
        _int_between(1, 1_000_000),
        5,
        "Failed authentications per client IP before it is blocked.",
    )
    auth_failure_window: float = setting(
        "AUTH_FAILURE_WINDOW",
        _seconds(1),
        300.0,
        "Sliding window, in seconds, over which failures are counted.",
    )
    state_url: str | None = setting(
        "STATE_URL",
        _as_state_url,
        None,
        "Shared state for several replicas or --workers: redis:// or rediss:// URL. Unset: "
        "state lives in this process (one replica). See docs/SCALING.md.",
        secret=True,
    )
    auth_tracked_ips: int = setting(
        "AUTH_TRACKED_IPS",
        _int_between(100, 10_000_000),
        20_000,
        "Most clients the failed-auth limiter remembers (least recent unblocked evicted; "
        "blocked ones are never evicted).",
    )
    auth_ipv6_prefix: int = setting(
        "AUTH_IPV6_PREFIX",
        _int_between(32, 128),
        64,
        "IPv6 clients are counted by network of this many bits (one host often has a /64).",
    )
    client_ip_header: str = setting(
        "CLIENT_IP_HEADER",
        _as_header_name,
        "X-Forwarded-For",
        "The one header a TRUSTED_PROXIES proxy sets with the client's address (read right to "
        "left past trusted hops); no other forwarding header is read.",
    )
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = setting(
        "TRUSTED_PROXIES",
        _as_networks,
        (),
        "Reverse proxies (IPs or CIDRs) whose CLIENT_IP_HEADER is believed.",
    )
    # Logging
    audit_log_path: str | None = setting(
        "AUDIT_LOG_PATH",
        _as_optional_str,
        "logs/audit.log",
        "File the audit log is appended to (besides stdout). Empty: stdout only.",
    )
    log_level: str = setting(
        "LOG_LEVEL",
        _as_log_level,
        "info",
        "Least severe level logged: debug, info, warning, error or critical.",
    )
    # HTTP and MCP
    allowed_origins: tuple[str, ...] = setting(
        "ALLOWED_ORIGINS",
        _as_origins,
        (),
        "Browser origins allowed besides same-origin (and localhost when listening on it).",
    )
    max_body_bytes: int = setting(
        "MAX_BODY_BYTES",
        _int_between(1024, 64 * 1024 * 1024),
        1_048_576,
        "Largest request body accepted; larger ones get 413.",
    )
    max_sessions: int = setting(
        "MAX_SESSIONS",
        _int_between(1, 1_000_000),
        1000,
        "MCP sessions kept at once, and event streams open at once (see "
        "MAX_SESSIONS_PER_KEY for what happens beyond it).",
    )
    max_sessions_per_key: int = setting(
        "MAX_SESSIONS_PER_KEY",
        _int_between(1, 1_000_000),
        250,
        "MCP sessions, and event streams, one key may hold at once; beyond it that key's own "
        "least recently used one goes. Another key's session is never evicted for it. With "
        "STATE_URL a key's event streams are counted on every replica together.",
    )
    stream_lease: float = setting(
        "STREAM_LEASE",
        _seconds(1),
        30.0,
        "With STATE_URL: seconds an event stream's share of MAX_SESSIONS_PER_KEY lives in Redis "
        "unless its replica renews it; a replica that dies frees its streams' shares within this.",
    )
    max_calls_per_key: int = setting(
        "MAX_CALLS_PER_KEY",
        _int_between(1, 10_000),
        8,
        "Tool calls of one key in progress at once; more get 429 with Retry-After, so one key's "
        "burst cannot hold the Gitea pool (GITEA_POOL_SIZE) every key shares.",
    )
    call_slot_lease: float = setting(
        "CALL_SLOT_LEASE",
        _seconds(1),
        30.0,
        "With STATE_URL: seconds a tool-call slot taken in Redis lives unless its replica renews "
        "it; a replica that dies holding slots frees them within this time.",
    )
    max_batch_result_bytes: int = setting(
        "MAX_BATCH_RESULT_BYTES",
        _int_between(10_000, 1_000_000_000),
        1_048_576,
        "Largest JSON-RPC batch reply; results beyond it are replaced by errors asking to "
        "send those calls again.",
    )
    max_queued_bytes: int = setting(
        "MAX_QUEUED_BYTES",
        _int_between(100_000, 100_000_000_000),
        64 * 1024 * 1024,
        "Bytes of replies waiting for clients to read them, in all; beyond it new tool calls "
        "get 503 with Retry-After.",
    )
    http_send_timeout: float = setting(
        "HTTP_SEND_TIMEOUT",
        _seconds(0.1),
        30.0,
        "Seconds a client may take to read a reply (or an event) before its connection is "
        "dropped, so a client that does not read holds no memory.",
    )
    session_ttl: float = setting(
        "SESSION_TTL",
        _seconds(60),
        86400.0,
        "Seconds an idle MCP session lives before its id is refused with 404.",
    )
    session_secret: str | None = setting(
        "SESSION_SECRET",
        _as_optional_str,
        None,
        "Secret that signs session ids (default: derived from the API keys).",
        secret=True,
    )
    sse_keepalive: float = setting(
        "SSE_KEEPALIVE",
        _seconds(0.05),
        15.0,
        "Seconds between keep-alive comments on idle event streams.",
    )
    shutdown_timeout: float = setting(
        "SHUTDOWN_TIMEOUT",
        _seconds(0),
        10.0,
        "Seconds in-flight requests get to finish after SIGTERM.",
    )
    http_idle_timeout: float = setting(
        "HTTP_IDLE_TIMEOUT",
        _seconds(0.1),
        60.0,
        "Seconds a connection may take to send a request's headers, or sit idle between "
        "requests, before it is closed (slow clients).",
    )
    http_header_timeout: float = setting(
        "HTTP_HEADER_TIMEOUT",
        _seconds(0.1),
        10.0,
        "Seconds a new connection gets to send its first request's headers before it is closed "
        "(half-open connections).",
    )
    max_connections: int = setting(
        "MAX_CONNECTIONS",
        _int_between(0, 10_000_000),
        0,
        "Open client connections at once; more are closed on accept. 0: the open-files limit "
        "(raised to its hard limit at start) less a reserve for the server's own files.",
    )
    max_connections_per_ip: int = setting(
        "MAX_CONNECTIONS_PER_IP",
        _int_between(1, 10_000_000),
        64,
        "Open connections from one client address (TRUSTED_PROXIES are exempt).",
    )
    http_body_timeout: float = setting(
        "HTTP_BODY_TIMEOUT",
        _seconds(0.1),
        30.0,
        "Seconds a client may take to send a request body before the connection is closed.",
    )
    # Access policy and output safety. Patterns are checked where the policies are built
    # (assembly.build_policies), by the policies' own parsers: one definition of valid.
    repo_allowlist: tuple[str, ...] = setting(
        "REPO_ALLOWLIST",
        _as_tuple,
        (),
        "Only these repositories are reachable (owner/* or owner/repo). Empty: all.",
    )
    repo_denylist: tuple[str, ...] = setting(
        "REPO_DENYLIST",
        _as_tuple,
        (),
        "These repositories are never reachable; they behave as not found.",
    )
    sensitive_paths: tuple[str, ...] | None = setting(
        "SENSITIVE_PATHS",
        _as_optional_tuple,
        None,
        "Globs of files never returned (replaces the built-in list). Unset: the built-in list.",
    )
    max_result_bytes: int = setting(
        "MAX_RESULT_BYTES",
        _int_between(1000, 50_000_000),
        100_000,
        "Largest tool result; longer text is cut and marked truncated.",
    )
    # Metrics
    metrics_port: int | None = setting(
        "METRICS_PORT",
        _as_optional_port,
        None,
        "Serve GET /metrics (Prometheus) on this separate port. Unset: not on a port of its own.",
    )
    metrics_host: str = setting(
        "METRICS_HOST", _as_str, "127.0.0.1", "Address the metrics port listens on."
    )
    metrics_key: ConfiguredKey | None = setting(
        "METRICS_KEY",
        _as_metrics_key,
        None,
        "Key scrapers must present for /metrics (hex, or sha256:<digest>). Without "
        "METRICS_PORT it serves /metrics on the main port; unset with no METRICS_PORT: off.",
        secret=True,
    )
    metrics_repo_labels: bool = setting(
        "METRICS_REPO_LABELS",
        _as_bool,
        False,
        "Also count successful Gitea calls per repository (repository names become labels).",
    )
    # OAuth 2.1 (ChatGPT, Claude and SDK clients sign in through Gitea)
    public_url: str | None = setting(
        "PUBLIC_URL",
        _as_public_url,
        None,
        "External https URL of this server; the OAuth issuer and the /mcp resource derive from it.",
    )
    oauth_enabled: bool = setting(
        "OAUTH_ENABLED",
        _as_bool,
        False,
        "Serve OAuth 2.1 (sign-in through Gitea, per-user reads) beside API keys.",
    )
    gitea_oauth_client_id: str | None = setting(
        "GITEA_OAUTH_CLIENT_ID",
        _as_optional_str,
        None,
        "Client ID of the confidential Gitea OAuth2 application (redirect PUBLIC_URL/oauth/callback).",
    )
    gitea_oauth_client_secret: str | None = setting(
        "GITEA_OAUTH_CLIENT_SECRET",
        _as_optional_str,
        None,
        "Client secret of that Gitea OAuth2 application.",
        secret=True,
    )
    gitea_oauth_scopes: str = setting(
        "GITEA_OAUTH_SCOPES",
        _as_gitea_scopes,
        GITEA_OAUTH_SCOPES,
        "Scopes asked of Gitea; only 'read:user read:repository read:issue' is accepted.",
    )
    oauth_access_token_ttl: int = setting(
        "OAUTH_ACCESS_TOKEN_TTL",
        _int_between(1, 86400),
        3600,
        "Seconds an OAuth access token is valid.",
    )
    oauth_refresh_token_ttl: int = setting(
        "OAUTH_REFRESH_TOKEN_TTL",
        _int_between(60, 365 * 86400),
        30 * 86400,
        "Seconds an OAuth refresh token is valid (each refresh rotates it).",
    )
    oauth_state_path: str = setting(
        "OAUTH_STATE_PATH",
        _as_str,
        "data/oauth.sqlite3",
        "SQLite file holding OAuth clients, grants, hashed tokens and encrypted Gitea tokens "
        "(not used with STATE_URL: OAuth state is then in Redis).",
    )
    oauth_encryption_key: str | None = setting(
        "OAUTH_ENCRYPTION_KEY",
        _as_optional_str,
        None,
        "Fernet key encrypting Gitea tokens at rest (default: a 0600 key file beside the store; "
        "required with STATE_URL, the same on every replica).",
        secret=True,
    )
    oauth_redirect_prefixes: tuple[str, ...] = setting(
        "OAUTH_REDIRECT_PREFIXES",
        _as_url_prefixes,
        DEFAULT_OAUTH_REDIRECT_PREFIXES,
        "https redirect URI prefixes admitted at registration (loopback URIs are always admitted).",
    )
    oauth_cimd_hosts: tuple[str, ...] = setting(
        "OAUTH_CIMD_HOSTS",
        _as_hostnames,
        DEFAULT_OAUTH_CIMD_HOSTS,
        "Hosts whose Client ID Metadata Documents are trusted and fetched.",
    )
    oauth_registrations_per_minute: int = setting(
        "OAUTH_REGISTRATIONS_PER_MINUTE",
        _int_between(1, 100_000),
        10,
        "Dynamic client registrations accepted per client IP per minute.",
    )
    oauth_token_cache_ttl: float = setting(
        "OAUTH_TOKEN_CACHE_TTL",
        _seconds(0),
        5.0,
        "Seconds a verified OAuth access token (and its user's opened Gitea tokens) is "
        "trusted without a store lookup (0: every request looks it up); a revocation on "
        "another replica is seen at most this late.",
    )
    oauth_scopes: dict[str, Any] | None = setting(
        "OAUTH_SCOPES",
        _as_oauth_scopes,
        None,
        "Scopes narrowing OAuth callers, as for keys: {users: {<gitea login>: {repos, tools, "
        "sensitive_paths, expires, allowed_ips}}, clients: {<client id>: {...}}}; both apply.",
    )

    @property
    def demo_mode(self) -> bool:
        """No Gitea configured: the built-in demo Gitea is served instead."""
        return self.gitea_url is None

    @property
    def listens_on_localhost(self) -> bool:
        return self.host in ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class Setting:
    """One setting as plain data: a view of a ``Settings`` field, for loaders and docs."""

    name: str  # attribute on Settings and key in the YAML file
    env: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    secret: bool = False


SCHEMA: tuple[Setting, ...] = tuple(
    Setting(f.name, default=f.default, **f.metadata) for f in fields(Settings)
)
_BY_NAME = {s.name: s for s in SCHEMA}


def read_yaml(path: str) -> dict[str, Any]:
    """The YAML config file as a mapping of setting names, or ConfigError on any problem."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as error:
        raise ConfigError(f"config file {path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"config file {path}: YAML syntax error{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must be a mapping of setting names to values")
    unknown = sorted(str(k) for k in data if k not in _BY_NAME)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s): {', '.join(unknown)}")
    return data


def read_env_file(path: str) -> dict[str, str]:
    """The variables a ``.env`` file assigns (python-dotenv's reading: quotes, ``export``,
    comments), or ConfigError when it cannot be read. Unset-valued lines are left out."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = dotenv_values(stream=handle, interpolate=False)
    except OSError as error:
        raise ConfigError(f"env file {path}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"env file {path}: not UTF-8 text") from None
    return {name: value for name, value in values.items() if value is not None}


def load_settings(
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    env_file: str | None = None,
) -> Settings:
    """Defaults < YAML file < ``env_file`` < environment < overrides (command-line flags)."""
    environ = os.environ if environ is None else environ
    sources: list[tuple[str, Mapping[str, Any]]] = []
    if config_path:
        sources.append(("yaml", read_yaml(config_path)))
    if env_file:
        dotenv = read_env_file(env_file)
        sources.append(("dotenv", {s.name: dotenv[s.env] for s in SCHEMA if s.env in dotenv}))
    sources.append(("env", {s.name: environ[s.env] for s in SCHEMA if s.env in environ}))
    if overrides:
        sources.append(("flag", {k: v for k, v in overrides.items() if v is not None}))

    values: dict[str, Any] = {}
    for kind, source in sources:
        for name, raw in source.items():
            setting = _BY_NAME[name]
            where = {
                "yaml": f"{name} (config file)",
                "dotenv": f"{setting.env} (in {env_file})",
                "env": setting.env,
                "flag": f"--{name}",
            }[kind]
            try:
                values[name] = setting.parse(raw)
            except ValueError as error:
                raise ConfigError(f"{where}: {error}") from None
    settings = Settings(**values)
    _check_consistency(settings)
    return settings


def _check_consistency(settings: Settings) -> None:
    if (
        settings.auth_enabled
        and not settings.api_keys
        and not settings.demo_mode
        and not settings.oauth_enabled
    ):
        # The guide's wording, so operators can search for it.
        raise ConfigError(
            "MCP_API_KEYS: No API keys configured in environment (make generate-key prints one)"
        )
    if settings.gitea_public_url and not settings.gitea_url:
        raise ConfigError("GITEA_PUBLIC_URL: set GITEA_URL too (the demo Gitea has its own links)")
    if settings.gitea_url and not settings.gitea_token and not settings.gitea_anonymous:
        raise ConfigError(
            "GITEA_TOKEN: not set, but GITEA_URL is: set the bot account's token, or "
            "GITEA_ANONYMOUS=true to read Gitea anonymously (public repositories only)"
        )
    if settings.gitea_anonymous and settings.gitea_token:
        raise ConfigError("GITEA_ANONYMOUS: true, but GITEA_TOKEN is set: unset one of them")
    if settings.gitea_anonymous and not settings.gitea_url:
        raise ConfigError("GITEA_ANONYMOUS: set GITEA_URL too (the demo Gitea has its own token)")
    if (
        settings.oauth_enabled
        and settings.state_url is not None
        and not settings.demo_mode
        and not settings.oauth_encryption_key
    ):
        # Each replica would otherwise create its own key file, and none could read what the
        # others sealed.
        raise ConfigError(
            "OAUTH_ENCRYPTION_KEY: required with STATE_URL when OAUTH_ENABLED is true: every "
            "replica must seal users' Gitea tokens with the same Fernet key"
        )
    if settings.oauth_enabled and not settings.demo_mode:
        # The demo derives these from the address it listens on and its own Gitea double.
        if not settings.public_url:
            raise ConfigError("PUBLIC_URL: required when OAUTH_ENABLED is true")
        if not settings.gitea_oauth_client_id or not settings.gitea_oauth_client_secret:
            raise ConfigError(
                "GITEA_OAUTH_CLIENT_ID: OAUTH_ENABLED needs the Gitea OAuth2 application's "
                "client ID and GITEA_OAUTH_CLIENT_SECRET"
            )


def describe_schema() -> list[dict[str, Any]]:
    """The schema as plain data (used by docs tests and the example-config check)."""
    return [
        {"name": s.name, "env": s.env, "default": s.default, "help": s.help, "secret": s.secret}
        for s in SCHEMA
    ]
