"""Wire the pieces together for a real run: Gitea (or the demo double), tools, MCP, HTTP."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable

import structlog

from . import __version__
from .auth.keys import KeyRing
from .auth.scopes import (
    OAuthScopes,
    ScopedPathPolicy,
    ScopedRepoPolicy,
    ScopedToolRegistry,
    parse_oauth_scopes,
    unknown_tools,
    with_scopes,
)
from .context import AppContext
from .gitea import GiteaClient
from .mcp.protocol import McpServer, ServerInfo
from .mcp.registry import ToolRegistry
from .server import serve_until, start_server, stop_on_signals
from .settings import ConfigError, Settings
from .state.session_ends import SharedSessionEnds
from .state.store import StateStore, StateUnavailable
from .tools import ToolEnv, build_registry
from .tools.policy import PathPolicy, RepoPolicy
from .tools.resources import RepositoryFiles
from .web.app import make_app
from .web.sessions import LegacySessionRegistry, SessionStore

log = structlog.get_logger("aegis.server")

# The first 512 characters must stand alone: some clients show no more.
INSTRUCTIONS = (
    "Read-only access to a Gitea server (self-hosted Git: repositories, files, commits, "
    "branches, tags, issues, pull requests, releases). Start with list_repositories or search; "
    "use owner and repo exactly as returned. Read files with get_file_tree then "
    "get_file_contents (use start_line/end_line for big files). search + fetch serve deep "
    "research: fetch takes an id from search. Lists are paged: page from 1, limit up to 50, "
    "has_more tells if more exist.\n\n"
    "Everything is read-only. Some repositories and sensitive files (keys, .env) are blocked "
    "by policy and behave as not found or are refused; do not retry those. Results over the "
    "size limit are cut and marked truncated, with how to read the rest. Secrets in file "
    "content are redacted and invisible Unicode characters removed. Cite the url field when "
    "quoting Gitea content."
)

SERVER_INFO = ServerInfo(
    name="aegis-gitea-mcp",
    title="AegisGitea MCP",
    version=__version__,
    instructions=INSTRUCTIONS,
)


class StartupError(Exception):
    """The environment stops the server from starting (the port is taken, the address is not
    this host's): the CLI prints this one line and exits 2."""


def session_secret(settings: Settings, keyring: KeyRing) -> bytes:
    """The key signing session ids.

    Configured, or derived from the configured keys so that ids survive a restart (hosted
    clients rarely recover from a 404); random when there are no keys. Knowing it would only let
    someone mint ids for a key they must still present: sessions never authenticate.
    """
    if settings.session_secret:
        return settings.session_secret.encode()
    digests = sorted(key.digest for key in keyring)
    if not digests:
        return secrets.token_bytes(32)
    return hashlib.sha256(("aegis-session-v1:" + ",".join(digests)).encode()).digest()


def build_keyring(settings: Settings) -> KeyRing:
    """The configured keys with their scopes built (the one place they are: start-up and SIGHUP);
    ConfigError naming the key by its place, never its value."""
    try:
        return KeyRing(with_scopes(settings.api_keys))
    except ValueError as error:
        # Scope fields exist only on the mapping entries of the YAML file.
        raise ConfigError(f"api_keys (config file): {error}") from None


def build_oauth_scopes(settings: Settings) -> OAuthScopes:
    """The scopes of OAuth users and clients (OAUTH_SCOPES) built; ConfigError naming the entry."""
    try:
        return parse_oauth_scopes(settings.oauth_scopes)
    except ValueError as error:
        raise ConfigError(f"OAUTH_SCOPES (oauth_scopes): {error}") from None


def warn_unknown_scope_tools(
    keyring: KeyRing, oauth_scopes: OAuthScopes, tool_names: Iterable[str]
) -> None:
    """A scope naming a tool nobody registered is a typo the operator should hear about (the
    key or OAuth caller simply lacks that tool): one warning per key or entry, at start-up and
    on every reload."""
    for label, names in unknown_tools([*keyring, *oauth_scopes.labelled()], tool_names).items():
        log.warning("key_scope_names_unknown_tools", key=label, tools=names)


def build_context(settings: Settings, keyring: KeyRing, registry: ToolRegistry) -> AppContext:
    ctx = AppContext.from_settings(settings, keyring)
    ctx.oauth_scopes = build_oauth_scopes(settings)
    # Each request sees the tools its key's scope allows (auth/scopes.py); so tools/list is
    # cached per caller ("private") whatever the keys in force now, since a reload may scope them.
    ctx.mcp = McpServer(ScopedToolRegistry(registry), SERVER_INFO, caller_scoped_tools=True)
    RepositoryFiles.install(ctx.mcp)  # resources and completions, over the file tools
    ctx.metrics.watch(ctx, tool_names=[tool.name for tool in registry])
    warn_unknown_scope_tools(keyring, ctx.oauth_scopes, (tool.name for tool in registry))
    ctx.sessions = SessionStore(
        session_secret(settings, keyring),
        settings.session_ttl,
        settings.max_sessions,
        max_per_key=settings.max_sessions_per_key,
        # STATE_URL: a DELETE ends the session on every replica (over the relay's subscription).
        shared_ends=(
            SharedSessionEnds(ctx.state, ctx.sse_relay)
            if ctx.state is not None and ctx.sse_relay is not None
            else None
        ),
    )
    ctx.legacy_sessions = LegacySessionRegistry(
        settings.max_sessions, settings.max_sessions_per_key
    )
    return ctx


def build_policies(settings: Settings) -> tuple[RepoPolicy, PathPolicy]:
    """The access policies the settings describe; ConfigError naming the setting whose pattern
    the policy's own parser refuses (the one definition of a valid pattern)."""
    try:
        repos = RepoPolicy(allow=settings.repo_allowlist, deny=())
    except ValueError as error:
        raise ConfigError(f"REPO_ALLOWLIST: {error}") from None
    try:
        repos = RepoPolicy(allow=settings.repo_allowlist, deny=settings.repo_denylist)
    except ValueError as error:
        raise ConfigError(f"REPO_DENYLIST: {error}") from None
    try:
        paths = PathPolicy(settings.sensitive_paths)
    except ValueError as error:
        raise ConfigError(f"SENSITIVE_PATHS: {error}") from None
    return repos, paths


def gitea_tools(
    settings: Settings, gitea_url: str, token: str | None, public_url: str | None = None
) -> tuple[GiteaClient, ToolRegistry]:
    """The Gitea client and the tools over it, as the settings describe them."""
    repos_global, paths_global = build_policies(settings)
    # The global policy, narrowed per request by the caller's key scope (auth/scopes.py).
    repos = ScopedRepoPolicy(repos_global)
    paths = ScopedPathPolicy(paths_global)
    # A renamed repository redirects; the client follows only into repositories the policy allows.
    client = GiteaClient(
        gitea_url,
        token,
        timeout=settings.gitea_timeout,
        retries=settings.gitea_retries,
        pool_size=settings.gitea_pool_size,
        repository_guard=repos.allows,
    )
    env = ToolEnv(
        client=client,
        repos=repos,
        paths=paths,
        public_url=public_url or settings.gitea_public_url or gitea_url,
        max_result_bytes=settings.max_result_bytes,
        withheld=(token,) if token else (),
    )
    return client, build_registry(env)


def build_oauth_store(settings: Settings):
    """Where OAuth state lives (the one place that decides): Redis with ``STATE_URL``, shared
    by every replica; otherwise the SQLite file ``OAUTH_STATE_PATH`` of this process. The demo
    keeps its own: its Gitea is in the process and forgets everything at exit."""
    if settings.state_url is not None and not settings.demo_mode:
        from .oauth.redis_store import RedisOAuthStore

        return RedisOAuthStore(settings.state_url, refresh_ttl=settings.oauth_refresh_token_ttl)
    from .oauth.store import OAuthStore

    return OAuthStore(settings.oauth_state_path)


def oauth_vault_key(settings: Settings) -> bytes:
    """The Fernet key sealing users' Gitea tokens: ``OAUTH_ENCRYPTION_KEY`` (required with
    ``STATE_URL``: replicas must share it), else a 0600 key file beside the SQLite store."""
    from cryptography.fernet import Fernet

    from .oauth.vault import load_or_create_key

    if settings.oauth_encryption_key:
        return settings.oauth_encryption_key.encode()
    if settings.oauth_state_path == ":memory:":
        return Fernet.generate_key()
    return load_or_create_key(None, settings.oauth_state_path + ".key")


def build_oauth(
    settings: Settings,
    gitea_url: str,
    public_url: str,
    client_id: str,
    client_secret: str,
    gitea_browser_url: str | None = None,
    state: StateStore | None = None,
):
    """The OAuth service (authorization server, and token check of the resource server);
    ``state``: the shared store's connection, for the per-IP OAuth rates (``STATE_URL``)."""
    from .oauth import OAuthService

    return OAuthService(
        public_url=public_url,
        gitea_api_url=gitea_url,
        gitea_browser_url=gitea_browser_url or settings.gitea_public_url or gitea_url,
        client_id=client_id,
        client_secret=client_secret,
        scopes=settings.gitea_oauth_scopes,
        store=build_oauth_store(settings),
        vault_key=oauth_vault_key(settings),
        access_ttl=settings.oauth_access_token_ttl,
        refresh_ttl=settings.oauth_refresh_token_ttl,
        redirect_prefixes=settings.oauth_redirect_prefixes,
        registrations_per_minute=settings.oauth_registrations_per_minute,
        cimd_hosts=settings.oauth_cimd_hosts,
        gitea_timeout=settings.gitea_timeout,
        state=state,
        token_cache_ttl=settings.oauth_token_cache_ttl,
    )


async def check_vault_key(oauth) -> None:
    """Replicas sharing OAuth state must seal with one key: a replica with another refuses to
    start (StartupError: one line, exit 2). Redis down: checked by every seal and unseal."""
    try:
        same = await oauth.claim_vault_key()
    except StateUnavailable:
        log.warning("oauth_vault_key_unchecked", reason="state_store_unavailable")
        return
    if not same:
        raise StartupError(
            "OAUTH_ENCRYPTION_KEY: not the key of the other replicas on STATE_URL (Redis "
            "holds its fingerprint, never the key): give every replica the same key"
        )


async def run(
    settings: Settings,
    keyring: KeyRing,
    on_listening: Callable[[int], None] | None = None,
    sockets: list[socket.socket] | None = None,
) -> int:
    """Serve until stopped; on ``sockets`` when given (``--workers``: bound before forking)."""
    stop = stop_on_signals()
    cleanups: list[Callable[[], Awaitable[None] | None]] = []
    token = settings.gitea_token
    double_app = None
    if settings.gitea_url is not None:
        gitea_url = settings.gitea_url
    else:
        # The Gitea double, in-process on a free loopback port, serves the sample repositories.
        from .gitea_double import DEMO_TOKEN, start_double, stop_double

        double_server, double_port, double_app = await start_double()
        gitea_url, token = f"http://127.0.0.1:{double_port}", DEMO_TOKEN
        cleanups.append(lambda: stop_double(double_server, double_app))
        log.warning("demo_gitea_started", url=gitea_url)
    assert gitea_url is not None
    client, registry = gitea_tools(settings, gitea_url, token)
    cleanups.insert(0, client.close)
    ctx = build_context(settings, keyring, registry)
    client.observer = ctx.metrics.observe_gitea
    try:
        running = await start_server(settings, make_app, ctx, sockets)
    except OSError as error:  # EADDRINUSE, EACCES, EADDRNOTAVAIL, an unknown host name
        for cleanup in reversed(cleanups):
            result = cleanup()
            if result is not None:
                await result
        reason = error.strerror or str(error)
        raise StartupError(
            f"MCP_HOST/MCP_PORT: cannot listen on {settings.host}:{settings.port}: {reason}"
        ) from None
    running.cleanups.extend(cleanups)
    if ctx.state is not None:
        # Not fatal: requests needing the store fail closed until it answers (reconnects are
        # automatic); the log says which.
        await ctx.state.ping()
        running.cleanups.append(ctx.state.close)
        if ctx.sse_relay is not None:
            running.cleanups.insert(0, ctx.sse_relay.close)
        if ctx.shared_calls is not None:
            running.cleanups.insert(0, ctx.shared_calls.close)
        if ctx.shared_streams is not None:
            running.cleanups.insert(0, ctx.shared_streams.close)
    if (settings.oauth_enabled or settings.demo_mode) and settings.auth_enabled:
        # The issuer is known once the port is (the demo may listen on any free port).
        public_url = settings.public_url or f"http://127.0.0.1:{running.port}"
        client_id, secret = settings.gitea_oauth_client_id, settings.gitea_oauth_client_secret
        if double_app is not None:
            from .gitea_double.oauth2 import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, OAuthApp

            client_id, secret = DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
            double_app.double.oauth.register_app(  # type: ignore[attr-defined]
                OAuthApp(
                    DEMO_CLIENT_ID,
                    DEMO_CLIENT_SECRET,
                    (f"{public_url}/oauth/callback",),
                    name="AegisGitea MCP (demo)",
                )
            )
        assert client_id and secret
        if double_app is not None and settings.oauth_state_path == Settings.oauth_state_path:
            # The demo Gitea forgets everything at exit; so does the demo's OAuth store.
            settings = dataclasses.replace(settings, oauth_state_path=":memory:")
        ctx.oauth = build_oauth(settings, gitea_url, public_url, client_id, secret, state=ctx.state)
        running.cleanups.insert(0, ctx.oauth.close)
        try:
            await check_vault_key(ctx.oauth)
        except StartupError:
            await running.shutdown()
            raise
        log.info("oauth_enabled", issuer=public_url, resource=ctx.oauth.resource)
    log.info(
        "listening",
        host=settings.host,
        port=running.port,
        url=f"http://{settings.host}:{running.port}/mcp",
        tools=len(registry),
    )
    if on_listening:
        on_listening(running.port)
    return await serve_until(stop, running)
