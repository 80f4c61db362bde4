"""``aegis-mcp [--config FILE] [--env-file FILE] [--host H] [--port P] [--workers N]``: validate,
then serve.

Exit status 2, with one line on stderr and no traceback, for any configuration or environment
mistake found at start-up (a bad setting, an unreadable file, an unwritable audit log, a port
that is taken or not permitted); 0 after a graceful shutdown. Where settings come from and which
source wins: ``aegis_tornado/settings.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from . import __version__, reload
from .assembly import StartupError, build_keyring, build_oauth_scopes, build_policies
from .assembly import run as assembly_run
from .auth.keys import KeyRing, generate_key, parse_key
from .logs import AuditFileError, SecretScrubber, check_audit_path, configure_logging
from .metrics import observe_log_pipeline
from .settings import ConfigError, Settings, load_settings
from .workers import bind_worker_sockets, keep_only, run_workers, worker_audit_path

EXIT_CONFIG = 2
DEFAULT_ENV_FILE = ".env"

Run = Callable[..., Coroutine[Any, Any, int]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="aegis-mcp",
        description="AegisGitea MCP: a read-only, access-controlled MCP gateway to Gitea.",
        epilog=(
            "Settings, highest precedence first: flags > environment variables > the .env file "
            "> the YAML file > defaults."
        ),
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("AEGIS_CONFIG"),
        help="YAML settings file (see conf/aegis.example.yaml)",
    )
    parser.add_argument(
        "--env-file",
        metavar="FILE",
        help="dotenv file of settings (default: ./.env when it exists; see .env.example)",
    )
    parser.add_argument("--host", help="address to listen on (MCP_HOST)")
    parser.add_argument("--port", help="port to listen on, 0 for any free port (MCP_PORT)")
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="worker processes sharing the port, one per core (N > 1 needs STATE_URL)",
    )
    parser.add_argument("--version", action="version", version=f"aegis-mcp {__version__}")
    return parser.parse_args(argv)


def env_file_to_read(named: str | None) -> str | None:
    """The file named by --env-file (it must exist), else ./.env if there is one."""
    if named is not None:
        if not os.path.isfile(named):
            raise ConfigError(f"--env-file {named}: no such file")
        return named
    return DEFAULT_ENV_FILE if os.path.isfile(DEFAULT_ENV_FILE) else None


def demo_keyring(settings: Settings, keyring: KeyRing) -> tuple[KeyRing, str | None]:
    """In demo mode without keys, a fresh key so a newcomer can connect at once."""
    if settings.demo_mode and settings.auth_enabled and not settings.api_keys:
        key = generate_key()
        return KeyRing([parse_key(key, name="demo")]), key
    return keyring, None


def announce_demo_key(key: str, port: int) -> None:
    # Printed once to the terminal, outside the log pipeline: the key is never a log line.
    base = f"http://127.0.0.1:{port}"
    print(
        "\n"
        "==================================================================\n"
        "  DEMO MODE: no GITEA_URL configured; serving the built-in demo Gitea.\n"
        "  No MCP_API_KEYS configured, so this run generated a key:\n\n"
        f"    {key}\n\n"
        f"  Try:  curl -H 'Authorization: Bearer {key}' {base}/mcp/tools\n"
        f"  MCP clients: {base}/mcp with the header 'Authorization: Bearer <key>';\n"
        f"  clients that cannot send headers (ChatGPT): {base}/mcp/sse?api_key=<key>\n"
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


def log_startup(settings: Settings, keyring: KeyRing, generated: bool) -> None:
    log = structlog.get_logger("aegis.server")
    if not settings.auth_enabled:
        log.critical("API key authentication DISABLED - server is open to all requests!")
    elif generated:
        # The banner on stderr says the same: none configured, one generated for this run.
        log.info(
            "API key authentication ENABLED (no MCP_API_KEYS configured: "
            "1 demo key generated for this run)"
        )
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
    elif settings.gitea_anonymous:
        log.warning(
            "gitea_read_anonymously",
            note="GITEA_ANONYMOUS=true: only public repositories are visible",
        )


def fail(message: object) -> int:
    print(f"aegis-mcp: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _workers(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError("must be between 1 and 256")
    return value


def check_workers(settings: Settings, workers: int) -> None:
    """Several workers only with a shared store, and only what each can serve alone."""
    if workers <= 1:
        return
    if settings.state_url is None:
        raise ConfigError(
            f"--workers {workers} needs STATE_URL (redis://...): without a shared store each "
            "worker would keep its own limiter and sessions"
        )
    if settings.metrics_port is not None:
        raise ConfigError(
            f"--workers {workers} with METRICS_PORT: each worker counts only its own traffic, "
            "so a scrape would see one worker at random; run one worker per replica instead"
        )


def main(argv: list[str] | None = None, run: Run | None = None) -> int:
    """The entry point. ``run`` replaces ``assembly.run`` (tests serve their own tools through
    the same settings, logging, signal and shutdown handling)."""
    args = parse_args(argv)
    try:
        settings = load_settings(
            args.config,
            overrides={"host": args.host, "port": args.port},
            env_file=env_file_to_read(args.env_file),
        )
        check_workers(settings, args.workers)
        # A bad pattern or scope stops start-up here, in one line.
        build_policies(settings)
        keyring = build_keyring(settings)
        build_oauth_scopes(settings)
        audit_paths = (
            [settings.audit_log_path]
            if args.workers == 1
            else [worker_audit_path(settings.audit_log_path, n) for n in range(args.workers)]
        )
        for path in audit_paths:
            if path:
                check_audit_path(path)
    except (ConfigError, AuditFileError) as error:
        return fail(error)

    keyring, generated_key = demo_keyring(settings, keyring)
    if args.workers == 1:
        return serve(args, settings, keyring, generated_key, run)
    try:
        # Bound before forking, one socket per worker on the one port (SO_REUSEPORT).
        worker_sockets = bind_worker_sockets(args.workers, settings.port, settings.host)
    except OSError as error:
        reason = error.strerror or str(error)
        return fail(
            f"MCP_HOST/MCP_PORT: cannot listen on {settings.host}:{settings.port}: {reason}"
        )

    def serve_worker(index: int) -> int:
        sockets = worker_sockets[index]
        keep_only(sockets, worker_sockets)
        worker_settings = dataclasses.replace(
            settings, audit_log_path=worker_audit_path(settings.audit_log_path, index)
        )
        # The banners once, not once per worker.
        return serve(
            args, worker_settings, keyring, generated_key, run, sockets, announce=index == 0
        )

    return run_workers(args.workers, serve_worker, after_fork=lambda: keep_only([], worker_sockets))


def serve(
    args: argparse.Namespace,
    settings: Settings,
    keyring: KeyRing,
    generated_key: str | None,
    run: Run | None,
    sockets: list[socket.socket] | None = None,
    announce: bool = True,
) -> int:
    """Logging, reload and the server, in this process, until it is stopped."""
    known_keys = [*keyring, *([settings.metrics_key] if settings.metrics_key else [])]
    scrubber = SecretScrubber(
        key_digests=[k.digest for k in known_keys],
        key_lengths=[k.length for k in known_keys if k.length],
        literals=[settings.gitea_token, settings.session_secret],
    )
    logging_runtime = configure_logging(settings.log_level, settings.audit_log_path, scrubber)
    observe_log_pipeline(logging_runtime)
    # SIGHUP reloads keys and scopes from the same sources (a file without keys changes nothing,
    # so a generated demo key survives it).
    reload.configure(
        reload.KeySource(
            args.config,
            {"host": args.host, "port": args.port},
            scrubber=scrubber,
            env_file=env_file_to_read(args.env_file),
        )
    )
    try:
        log_startup(settings, keyring, generated=generated_key is not None)
        serve_with = run or assembly_run

        def on_listening(port: int) -> None:
            if generated_key and announce:
                announce_demo_key(generated_key, port)
            if settings.demo_mode and announce:
                announce_demo_users(settings, port)

        extra: dict[str, Any] = {} if sockets is None else {"sockets": sockets}
        return asyncio.run(serve_with(settings, keyring, on_listening=on_listening, **extra))
    except StartupError as error:
        return fail(error)
    finally:
        reload.configure(None)
        observe_log_pipeline(None)
        logging_runtime.stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
