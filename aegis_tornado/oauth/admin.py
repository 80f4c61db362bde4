"""Operator commands on the OAuth store (the server may be running: SQLite in WAL mode, or
Redis when ``STATE_URL`` is set, where every replica sees the change).

    python -m aegis_tornado.oauth.admin add-client --name ChatGPT --redirect-uri https://…
    python -m aegis_tornado.oauth.admin list-clients
    python -m aegis_tornado.oauth.admin delete-client CLIENT_ID
    python -m aegis_tornado.oauth.admin revoke-user GITEA_LOGIN

``add-client`` creates a pre-registered (static) confidential client, for an MCP client whose
OAuth settings take a client ID and secret (ChatGPT's static credentials, Claude's "client
ID/secret" fields). The secret is printed once and stored only as its SHA-256 digest.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from redis.exceptions import RedisError

from ..settings import ConfigError, load_settings
from .tokens import digest

if TYPE_CHECKING:
    from .store import OAuthStateStore

STATIC_PREFIX = "static_"


def add_static_client(
    store: OAuthStateStore, name: str, redirect_uris: list[str]
) -> tuple[str, str]:
    """Create a confidential client; returns ``(client_id, client_secret)``."""
    for uri in redirect_uris:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
            raise ValueError(f"not a usable redirect URI: {uri[:100]}")
    client_id = STATIC_PREFIX + secrets.token_urlsafe(12)
    secret = secrets.token_urlsafe(32)
    metadata = {
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    store.call_sync(store.add_client, client_id, metadata, "static", digest(secret))
    return client_id, secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis_tornado.oauth.admin")
    parser.add_argument("--config", help="YAML settings file (for OAUTH_STATE_PATH, or STATE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-client", help="create a static confidential client")
    add.add_argument("--name", required=True)
    add.add_argument("--redirect-uri", action="append", required=True)
    commands.add_parser("list-clients", help="registered, static and CIMD clients")
    delete = commands.add_parser("delete-client", help="delete a client and revoke its tokens")
    delete.add_argument("client_id")
    revoke = commands.add_parser("revoke-user", help="revoke every token of a Gitea user")
    revoke.add_argument("login")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from ..assembly import build_oauth_store

    store = build_oauth_store(settings)
    try:
        return _run(store, args)
    except (RedisError, OSError):
        print(
            "error: STATE_URL: the Redis holding the OAuth state cannot be reached", file=sys.stderr
        )
        return 2
    finally:
        store.close()


def _run(store: OAuthStateStore, args: argparse.Namespace) -> int:
    if args.command == "add-client":
        try:
            client_id, secret = add_static_client(store, args.name, args.redirect_uri)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"client_id:     {client_id}\nclient_secret: {secret}\n(shown once)")
    elif args.command == "list-clients":
        for row in store.call_sync(store.list_clients):
            print(f"{row['client_id']}\t{row['kind']}\t{row['client_name']}")
    elif args.command == "delete-client":
        store.call_sync(store.delete_client, args.client_id)
        print("deleted")
    else:
        count = store.call_sync(store.revoke_login, args.login)
        print(f"revoked {count} token(s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
