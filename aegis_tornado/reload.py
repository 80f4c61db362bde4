"""SIGHUP: reload the API keys, their scopes and OAUTH_SCOPES from the configuration, without
a restart.

Open connections, sessions and event streams are untouched: only the key ring a request is
checked against is replaced, so the next request of every client meets the new keys. A file
that does not load (a YAML error, a bad key, no keys at all) changes nothing and costs one log
line. Other settings are read but not applied; the ``config_reloaded`` line names those that
changed, so the operator knows a restart is needed for them.

The command line registers where the configuration comes from (:func:`configure`); the server
installs the signal handler once it is listening (:func:`install`). Reading the file happens off
the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from .auth.keys import KeyRing
from .auth.scopes import OAuthScopes
from .settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from .context import AppContext
    from .logs import SecretScrubber

log = structlog.get_logger("aegis.server")


@dataclass
class KeySource:
    """Where the keys come from: the same file, environment and flags as at start-up."""

    config_path: str | None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    #: The ``.env`` file read at start-up, if any: a reload reads it again.
    env_file: str | None = None
    #: The log scrubber learns every key ever loaded, so a new key never reaches a log line.
    scrubber: SecretScrubber | None = None


_source: KeySource | None = None


def configure(source: KeySource | None) -> None:
    """Called by the command line before the server starts."""
    global _source
    _source = source


def install(ctx: AppContext) -> None:
    """Reload on SIGHUP for this server (when the command line configured a source)."""
    source = _source
    if source is None or not hasattr(signal, "SIGHUP"):
        return
    lock = asyncio.Lock()

    async def reload_serialised() -> None:
        async with lock:
            await reload_keys(ctx, source)

    asyncio.get_running_loop().add_signal_handler(
        signal.SIGHUP, lambda: asyncio.ensure_future(reload_serialised())
    )


def load_access(source: KeySource) -> tuple[Settings, KeyRing, OAuthScopes]:
    """The configuration read again, and the keys and OAuth scopes built from it as at
    start-up (by the same functions); ConfigError when any of it is wrong."""
    # Here, not at the top: assembly imports the server, which imports this module.
    from .assembly import build_keyring, build_oauth_scopes

    fresh = load_settings(source.config_path, dict(os.environ), source.overrides, source.env_file)
    return fresh, build_keyring(fresh), build_oauth_scopes(fresh)


async def reload_keys(ctx: AppContext, source: KeySource) -> bool:
    """Load the configuration again and apply its keys; True when they were applied."""
    try:
        fresh, keyring, oauth_scopes = await asyncio.to_thread(load_access, source)
        if ctx.settings.auth_enabled and not fresh.api_keys:
            raise ConfigError("api_keys: the new configuration has no keys")
    except ConfigError as error:
        # ConfigError messages are one line and never hold a secret's value.
        log.error("config_reload_failed", error=str(error), keys_kept=len(ctx.keyring))
        return False
    except Exception as error:  # noqa: BLE001 - a reload must never take the server down
        log.error("config_reload_failed", error=type(error).__name__, keys_kept=len(ctx.keyring))
        return False
    apply_keys(ctx, fresh, keyring, oauth_scopes, source.scrubber)
    return True


def apply_keys(
    ctx: AppContext,
    fresh: Settings,
    keyring: KeyRing,
    oauth_scopes: OAuthScopes,
    scrubber: SecretScrubber | None = None,
) -> None:
    old = ctx.settings
    if scrubber is not None:
        scrubber.key_digests = scrubber.key_digests | {k.digest for k in keyring}
        scrubber.key_lengths = tuple(
            sorted({*scrubber.key_lengths, *(k.length for k in keyring if k.length)})
        )
    ctx.settings = dataclasses.replace(
        old, api_keys=fresh.api_keys, oauth_scopes=fresh.oauth_scopes
    )
    ctx.keyring = keyring
    ctx.oauth_scopes = oauth_scopes
    registry = getattr(ctx.mcp, "registry", None)
    if registry is not None:
        from .assembly import warn_unknown_scope_tools  # see load_access

        warn_unknown_scope_tools(keyring, oauth_scopes, (t.name for t in registry.all_tools()))
    not_applied = sorted(
        f.name
        for f in dataclasses.fields(Settings)
        if f.name not in ("api_keys", "oauth_scopes")
        and getattr(old, f.name) != getattr(fresh, f.name)
    )
    log.info(
        "config_reloaded",
        keys=len(keyring),
        scoped_keys=sum(1 for k in keyring if k.scope is not None),
        oauth_scopes=len(oauth_scopes.users) + len(oauth_scopes.clients),
        restart_needed_for=not_applied or None,
    )
