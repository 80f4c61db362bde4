"""Settings: one declarative schema, loaded from defaults < YAML file < environment.

Every option is declared once in ``SCHEMA`` with its type, default, environment variable and help
text. ``load_settings`` returns a frozen ``Settings`` or raises ``ConfigError`` whose message is a
single line naming the setting and what is wrong with it, never the value of a secret.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import yaml

from .auth.keys import ConfiguredKey, KeyFormatError, parse_key
from .tools.policy import DEFAULT_SENSITIVE_PATHS, PathPolicy, RepoPolicy

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


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


def _as_networks(raw: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in _as_list(raw):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"'{item[:60]}' is not an IP address or CIDR network") from None
    return tuple(networks)


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


def _repo_patterns(kind: str) -> Callable[[Any], tuple[str, ...]]:
    def parse(raw: Any) -> tuple[str, ...]:
        patterns = tuple(_as_list(raw))
        RepoPolicy(**{kind: patterns})  # the policy's own parser: one definition of valid
        return patterns

    return parse


def _as_globs(raw: Any) -> tuple[str, ...]:
    globs = tuple(_as_list(raw))
    PathPolicy(globs)
    return globs


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


def _as_keys(raw: Any) -> tuple[ConfiguredKey, ...]:
    """Keys from MCP_API_KEYS (comma-separated) or YAML (strings or mappings with metadata)."""
    if raw is None:
        return ()
    entries = raw if isinstance(raw, list) else _as_list(raw)
    keys = []
    for number, entry in enumerate(entries, start=1):
        try:
            if isinstance(entry, dict):
                unknown = set(entry) - {"key", "sha256", "name", "created"}
                if unknown:
                    raise KeyFormatError(
                        f"has unknown field(s): {', '.join(sorted(map(str, unknown)))}"
                    )
                if ("key" in entry) == ("sha256" in entry):
                    raise KeyFormatError("needs exactly one of 'key' or 'sha256'")
                value = (
                    str(entry["key"])
                    if "key" in entry
                    else "sha256:" + str(entry["sha256"]).strip()
                )
                name = _as_optional_str(entry.get("name"))
                keys.append(parse_key(value, name=name, created=_as_date(entry.get("created"))))
            elif isinstance(entry, str):
                keys.append(parse_key(entry))
            else:
                raise KeyFormatError("must be a string or a mapping with 'key' or 'sha256'")
        except (KeyFormatError, ValueError) as error:
            raise ValueError(f"key #{number} {error}") from None
    return tuple(keys)


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


# --- the schema -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str  # attribute on Settings and key in the YAML file
    env: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    secret: bool = False


SCHEMA: tuple[Setting, ...] = (
    # Gitea
    Setting(
        "gitea_url",
        "GITEA_URL",
        _as_url,
        None,
        "Base URL of the Gitea instance. Unset: serve the built-in demo Gitea.",
    ),
    Setting(
        "gitea_token",
        "GITEA_TOKEN",
        _as_optional_str,
        None,
        "Token of the server's own Gitea bot account (read scopes only).",
        secret=True,
    ),
    Setting(
        "gitea_public_url",
        "GITEA_PUBLIC_URL",
        _as_url,
        None,
        "Web address of Gitea used in links given to clients (default: GITEA_URL).",
    ),
    Setting(
        "gitea_timeout",
        "GITEA_TIMEOUT",
        _seconds(0.1),
        10.0,
        "Seconds allowed for each Gitea request (connect and read).",
    ),
    Setting(
        "gitea_retries",
        "GITEA_RETRIES",
        _int_between(0, 10),
        2,
        "Retries for idempotent Gitea requests that failed transiently.",
    ),
    Setting(
        "gitea_pool_size",
        "GITEA_POOL_SIZE",
        _int_between(1, 256),
        16,
        "Keep-alive connections to Gitea, and Gitea calls in flight at once.",
    ),
    # Listening
    Setting("host", "MCP_HOST", _as_str, "127.0.0.1", "Address to listen on."),
    Setting("port", "MCP_PORT", _int_between(0, 65535), 8080, "TCP port to listen on."),
    # Authentication
    Setting(
        "api_keys",
        "MCP_API_KEYS",
        _as_keys,
        (),
        "Accepted API keys, comma-separated (hex, 64 characters; or sha256:<digest>).",
        secret=True,
    ),
    Setting(
        "auth_enabled",
        "AUTH_ENABLED",
        _as_bool,
        True,
        "Require an API key on every non-public route. Disable only for isolated testing.",
    ),
    Setting(
        "max_auth_failures",
        "MAX_AUTH_FAILURES",
        _int_between(1, 1_000_000),
        5,
        "Failed authentications per client IP before it is blocked.",
    ),
    Setting(
        "auth_failure_window",
        "AUTH_FAILURE_WINDOW",
        _seconds(1),
        300.0,
        "Sliding window, in seconds, over which failures are counted.",
    ),
    Setting(
        "auth_tracked_ips",
        "AUTH_TRACKED_IPS",
        _int_between(100, 10_000_000),
        20_000,
        "Most client IPs the failed-auth limiter remembers (least recent evicted).",
    ),
    Setting(
        "trusted_proxies",
        "TRUSTED_PROXIES",
        _as_networks,
        (),
        "Reverse proxies (IPs or CIDRs) whose X-Forwarded-For / X-Real-IP are believed.",
    ),
    # Logging
    Setting(
        "audit_log_path",
        "AUDIT_LOG_PATH",
        _as_optional_str,
        "logs/audit.log",
        "File the audit log is appended to (besides stdout). Empty: stdout only.",
    ),
    Setting(
        "log_level",
        "LOG_LEVEL",
        _as_log_level,
        "info",
        "Least severe level logged: debug, info, warning, error or critical.",
    ),
    # HTTP and MCP
    Setting(
        "allowed_origins",
        "ALLOWED_ORIGINS",
        _as_origins,
        (),
        "Browser origins allowed besides same-origin (and localhost when listening on it).",
    ),
    Setting(
        "max_body_bytes",
        "MAX_BODY_BYTES",
        _int_between(1024, 64 * 1024 * 1024),
        1_048_576,
        "Largest request body accepted; larger ones get 413.",
    ),
    Setting(
        "max_sessions",
        "MAX_SESSIONS",
        _int_between(1, 1_000_000),
        1000,
        "MCP sessions kept at once, and event streams open at once; beyond it the least "
        "recently used session is evicted and the oldest stream ended.",
    ),
    Setting(
        "session_ttl",
        "SESSION_TTL",
        _seconds(60),
        86400.0,
        "Seconds an idle MCP session lives before its id is refused with 404.",
    ),
    Setting(
        "session_secret",
        "SESSION_SECRET",
        _as_optional_str,
        None,
        "Secret that signs session ids (default: derived from the API keys).",
        secret=True,
    ),
    Setting(
        "sse_keepalive",
        "SSE_KEEPALIVE",
        _seconds(0.05),
        15.0,
        "Seconds between keep-alive comments on idle event streams.",
    ),
    Setting(
        "shutdown_timeout",
        "SHUTDOWN_TIMEOUT",
        _seconds(0),
        10.0,
        "Seconds in-flight requests get to finish after SIGTERM.",
    ),
    Setting(
        "http_idle_timeout",
        "HTTP_IDLE_TIMEOUT",
        _seconds(0.1),
        60.0,
        "Seconds a connection may take to send a request's headers, or sit idle between "
        "requests, before it is closed (slow clients).",
    ),
    Setting(
        "http_body_timeout",
        "HTTP_BODY_TIMEOUT",
        _seconds(0.1),
        30.0,
        "Seconds a client may take to send a request body before the connection is closed.",
    ),
    # Access policy and output safety
    Setting(
        "repo_allowlist",
        "REPO_ALLOWLIST",
        _repo_patterns("allow"),
        (),
        "Only these repositories are reachable (owner/* or owner/repo). Empty: all.",
    ),
    Setting(
        "repo_denylist",
        "REPO_DENYLIST",
        _repo_patterns("deny"),
        (),
        "These repositories are never reachable; they behave as not found.",
    ),
    Setting(
        "sensitive_paths",
        "SENSITIVE_PATHS",
        _as_globs,
        DEFAULT_SENSITIVE_PATHS,
        "Globs of files never returned (replaces the default list).",
    ),
    Setting(
        "max_result_bytes",
        "MAX_RESULT_BYTES",
        _int_between(1000, 50_000_000),
        100_000,
        "Largest tool result; longer text is cut and marked truncated.",
    ),
    # OAuth 2.1 (ChatGPT, Claude and SDK clients sign in through Gitea)
    Setting(
        "public_url",
        "PUBLIC_URL",
        _as_public_url,
        None,
        "External https URL of this server; the OAuth issuer and the /mcp resource derive from it.",
    ),
    Setting(
        "oauth_enabled",
        "OAUTH_ENABLED",
        _as_bool,
        False,
        "Serve OAuth 2.1 (sign-in through Gitea, per-user reads) beside API keys.",
    ),
    Setting(
        "gitea_oauth_client_id",
        "GITEA_OAUTH_CLIENT_ID",
        _as_optional_str,
        None,
        "Client ID of the confidential Gitea OAuth2 application (redirect PUBLIC_URL/oauth/callback).",
    ),
    Setting(
        "gitea_oauth_client_secret",
        "GITEA_OAUTH_CLIENT_SECRET",
        _as_optional_str,
        None,
        "Client secret of that Gitea OAuth2 application.",
        secret=True,
    ),
    Setting(
        "gitea_oauth_scopes",
        "GITEA_OAUTH_SCOPES",
        _as_gitea_scopes,
        GITEA_OAUTH_SCOPES,
        "Scopes asked of Gitea; only 'read:user read:repository read:issue' is accepted.",
    ),
    Setting(
        "oauth_access_token_ttl",
        "OAUTH_ACCESS_TOKEN_TTL",
        _int_between(1, 86400),
        3600,
        "Seconds an OAuth access token is valid.",
    ),
    Setting(
        "oauth_refresh_token_ttl",
        "OAUTH_REFRESH_TOKEN_TTL",
        _int_between(60, 365 * 86400),
        30 * 86400,
        "Seconds an OAuth refresh token is valid (each refresh rotates it).",
    ),
    Setting(
        "oauth_state_path",
        "OAUTH_STATE_PATH",
        _as_str,
        "data/oauth.sqlite3",
        "SQLite file holding OAuth clients, grants, hashed tokens and encrypted Gitea tokens.",
    ),
    Setting(
        "oauth_encryption_key",
        "OAUTH_ENCRYPTION_KEY",
        _as_optional_str,
        None,
        "Fernet key encrypting Gitea tokens at rest (default: a 0600 key file beside the store).",
        secret=True,
    ),
    Setting(
        "oauth_redirect_prefixes",
        "OAUTH_REDIRECT_PREFIXES",
        _as_url_prefixes,
        DEFAULT_OAUTH_REDIRECT_PREFIXES,
        "https redirect URI prefixes admitted at registration (loopback URIs are always admitted).",
    ),
    Setting(
        "oauth_cimd_hosts",
        "OAUTH_CIMD_HOSTS",
        _as_hostnames,
        DEFAULT_OAUTH_CIMD_HOSTS,
        "Hosts whose Client ID Metadata Documents are trusted and fetched.",
    ),
    Setting(
        "oauth_registrations_per_minute",
        "OAUTH_REGISTRATIONS_PER_MINUTE",
        _int_between(1, 100_000),
        10,
        "Dynamic client registrations accepted per client IP per minute.",
    ),
)

_BY_NAME = {s.name: s for s in SCHEMA}


@dataclass(frozen=True)
class Settings:
    gitea_url: str | None = None
    gitea_token: str | None = field(default=None, repr=False)
    gitea_public_url: str | None = None
    gitea_timeout: float = 10.0
    gitea_retries: int = 2
    gitea_pool_size: int = 16
    host: str = "127.0.0.1"
    port: int = 8080
    api_keys: tuple[ConfiguredKey, ...] = field(default=(), repr=False)
    auth_enabled: bool = True
    max_auth_failures: int = 5
    auth_failure_window: float = 300.0
    auth_tracked_ips: int = 20_000
    trusted_proxies: tuple = ()
    audit_log_path: str | None = "logs/audit.log"
    log_level: str = "info"
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576
    max_sessions: int = 1000
    session_ttl: float = 86400.0
    session_secret: str | None = field(default=None, repr=False)
    sse_keepalive: float = 15.0
    shutdown_timeout: float = 10.0
    http_idle_timeout: float = 60.0
    http_body_timeout: float = 30.0
    repo_allowlist: tuple[str, ...] = ()
    repo_denylist: tuple[str, ...] = ()
    sensitive_paths: tuple[str, ...] = DEFAULT_SENSITIVE_PATHS
    max_result_bytes: int = 100_000
    public_url: str | None = None
    oauth_enabled: bool = False
    gitea_oauth_client_id: str | None = None
    gitea_oauth_client_secret: str | None = field(default=None, repr=False)
    gitea_oauth_scopes: str = GITEA_OAUTH_SCOPES
    oauth_access_token_ttl: int = 3600
    oauth_refresh_token_ttl: int = 30 * 86400
    oauth_state_path: str = "data/oauth.sqlite3"
    oauth_encryption_key: str | None = field(default=None, repr=False)
    oauth_redirect_prefixes: tuple[str, ...] = DEFAULT_OAUTH_REDIRECT_PREFIXES
    oauth_cimd_hosts: tuple[str, ...] = DEFAULT_OAUTH_CIMD_HOSTS
    oauth_registrations_per_minute: int = 10

    @property
    def demo_mode(self) -> bool:
        """No Gitea configured: the built-in demo Gitea is served instead."""
        return self.gitea_url is None

    @property
    def listens_on_localhost(self) -> bool:
        return self.host in ("127.0.0.1", "::1", "localhost")


assert {f.name for f in fields(Settings)} == set(_BY_NAME), "Settings and SCHEMA disagree"


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


def load_settings(
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults < YAML file < environment < overrides (command-line flags)."""
    environ = os.environ if environ is None else environ
    sources: list[tuple[str, Mapping[str, Any]]] = []
    if config_path:
        sources.append(("yaml", read_yaml(config_path)))
    sources.append(("env", {s.name: environ[s.env] for s in SCHEMA if s.env in environ}))
    if overrides:
        sources.append(("flag", {k: v for k, v in overrides.items() if v is not None}))

    values: dict[str, Any] = {}
    for kind, source in sources:
        for name, raw in source.items():
            setting = _BY_NAME[name]
            where = {"yaml": f"{name} (config file)", "env": setting.env, "flag": f"--{name}"}[kind]
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
        raise ConfigError("MCP_API_KEYS: No API keys configured in environment")
    if settings.gitea_public_url and not settings.gitea_url:
        raise ConfigError("GITEA_PUBLIC_URL: set GITEA_URL too (the demo Gitea has its own links)")
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
