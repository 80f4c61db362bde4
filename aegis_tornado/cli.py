"""``aegis-mcp [--config FILE] [--host H] [--port P]``: validate settings, then serve.

Exit status 2, with one line on stderr, for any configuration problem; 0 after a graceful
shutdown.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import structlog

from . import __version__
from .auth.keys import KeyRing, generate_key, parse_key
from .logs import AuditFileError, SecretScrubber, check_audit_path, configure_logging
from .settings import ConfigError, Settings, load_settings

EXIT_CONFIG = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="aegis-mcp",
        description="AegisGitea MCP: a read-only, access-controlled MCP gateway to Gitea.",
        epilog="Settings come from defaults < the YAML file < environment variables < flags.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("AEGIS_CONFIG"),
        help="YAML settings file (see conf/aegis.example.yaml)",
    )
    parser.add_argument("--host", help="address to listen on (MCP_HOST)")
    parser.add_argument("--port", help="port to listen on, 0 for any free port (MCP_PORT)")
    parser.add_argument("--version", action="version", version=f"aegis-mcp {__version__}")
    return parser.parse_args(argv)


def demo_keyring(settings: Settings) -> tuple[KeyRing, str | None]:
    """In demo mode without keys, a fresh key so a newcomer can connect at once."""
    if settings.demo_mode and settings.auth_enabled and not settings.api_keys:
        key = generate_key()
        return KeyRing([parse_key(key, name="demo")]), key
    return KeyRing(settings.api_keys), None


def announce_demo_key(key: str, port: int) -> None:
    # Printed once to the terminal, outside the log pipeline: the key is never a log line.
    print(
        "\n"
        "==================================================================\n"
        "  DEMO MODE: no GITEA_URL configured; serving the built-in demo Gitea.\n"
        "  No MCP_API_KEYS configured, so this run generated a key:\n\n"
        f"    {key}\n\n"
        f"  Try:  curl -H 'Authorization: Bearer {key}' http://127.0.0.1:{port}/mcp/tools\n"
        "  It changes on every start; set MCP_API_KEYS to keep one.\n"
        "==================================================================\n",
        file=sys.stderr,
        flush=True,
    )


def announce_demo_users(settings: Settings, port: int) -> None:
    """The demo serves OAuth: who can sign in at the demo Gitea, printed once to the terminal."""
    from .gitea_double.oauth2 import DEMO_PASSWORDS

    public_url = settings.public_url or f"http://127.0.0.1:{port}"
    users = "\n".join(f"    {login:<6} {password}" for login, password in DEMO_PASSWORDS.items())
    print(
        "\n"
        "  OAuth is on: point the MCP Inspector or any OAuth MCP client at\n"
        f"    {public_url}/mcp\n"
        "  and sign in at the demo Gitea as one of (login, password):\n"
        f"{users}\n"
        "  Each sees the repositories Gitea lets that person see.\n",
        file=sys.stderr,
        flush=True,
    )


def log_startup(settings: Settings, keyring: KeyRing) -> None:
    log = structlog.get_logger("aegis.server")
    if not settings.auth_enabled:
        log.critical("API key authentication DISABLED - server is open to all requests!")
    else:
        log.info(f"API key authentication ENABLED ({len(keyring)} key(s) configured)")
        for key in keyring:
            if key.short:
                log.warning(
                    "api_key_shorter_than_recommended", key=key.label, recommended_length=64
                )
    if settings.demo_mode:
        log.warning(
            "DEMO MODE: no GITEA_URL configured - serving the built-in demo Gitea with sample "
            "repositories. Set GITEA_URL and GITEA_TOKEN to serve your own Gitea."
        )
    elif not settings.gitea_token:
        log.warning("gitea_token_missing", note="only public repositories will be visible")


def main(argv: list[str] | None = None, run=None) -> int:
    """The entry point. ``run`` replaces ``assembly.run`` (tests serve their own tools through
    the same settings, logging, signal and shutdown handling)."""
    args = parse_args(argv)
    try:
        settings = load_settings(args.config, overrides={"host": args.host, "port": args.port})
        if settings.audit_log_path:
            check_audit_path(settings.audit_log_path)
    except (ConfigError, AuditFileError) as error:
        print(f"aegis-mcp: {error}", file=sys.stderr)
        return EXIT_CONFIG

    keyring, generated_key = demo_keyring(settings)
    logging_runtime = configure_logging(
        settings.log_level,
        settings.audit_log_path,
        SecretScrubber(
            key_digests=[k.digest for k in keyring],
            key_lengths=[k.length for k in keyring if k.length],
            literals=[settings.gitea_token, settings.session_secret],
        ),
    )
    try:
        log_startup(settings, keyring)
        if run is None:
            from .assembly import run

        def on_listening(port: int) -> None:
            if generated_key:
                announce_demo_key(generated_key, port)
            if settings.demo_mode:
                announce_demo_users(settings, port)

        return asyncio.run(run(settings, keyring, on_listening=on_listening))
    finally:
        logging_runtime.stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
