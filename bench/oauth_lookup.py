"""Per-request cost of the OAuth bearer check against an API key's (issue 15's rule: "an OAuth
bearer's lookup costs no more than an API key's").

Times ``OAuthService.authenticate`` (the gate's whole OAuth token check) for one live token,
on the SQLite store and on the Redis store (a ``redis-server`` of its own on a free port), with
the verified-token cache off (``OAUTH_TOKEN_CACHE_TTL=0``: every request hops to the store's
thread) and on; and ``KeyRing.match`` for an API key. A measurement, not a test:

    .venv/bin/python bench/oauth_lookup.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet  # noqa: E402

from aegis_tornado.auth.keys import KeyRing, parse_key  # noqa: E402
from aegis_tornado.oauth.redis_store import RedisOAuthStore  # noqa: E402
from aegis_tornado.oauth.service import OAuthService  # noqa: E402
from aegis_tornado.oauth.store import OAuthStore  # noqa: E402
from aegis_tornado.oauth.tokens import digest  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

TOKEN = "agm_at_" + "x" * 43
RESOURCE = "https://mcp.example"


def service(store, cache_ttl: float) -> OAuthService:
    return OAuthService(
        public_url=RESOURCE,
        gitea_api_url="http://127.0.0.1:9",
        gitea_browser_url="http://127.0.0.1:9",
        client_id="c",
        client_secret="s",
        scopes="read:user read:repository read:issue",
        store=store,
        vault_key=Fernet.generate_key(),
        access_ttl=3600,
        refresh_ttl=86400,
        redirect_prefixes=(),
        registrations_per_minute=10,
        token_cache_ttl=cache_ttl,
    )


async def per_call_us(oauth: OAuthService, calls: int) -> float:
    for _ in range(200):  # warm up (and fill the cache when it is on)
        assert await oauth.authenticate(TOKEN) is not None
    started = time.perf_counter()
    for _ in range(calls):
        await oauth.authenticate(TOKEN)
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    calls = parser.parse_args().calls
    key = "ab" * 32
    ring = KeyRing((parse_key(key, name="k"),))
    started = time.perf_counter()
    for _ in range(calls):
        ring.match(key)
    print(f"API key (KeyRing.match)      {(time.perf_counter() - started) / calls * 1e6:7.1f} us")
    redis = RedisServer()
    redis.start()
    try:
        makers = {
            "sqlite": lambda: OAuthStore(os.path.join(tempfile.mkdtemp(), "oauth.sqlite3")),
            "redis": lambda: RedisOAuthStore(redis.url, refresh_ttl=86400),
        }
        for name, make in makers.items():
            for cache_ttl in (0.0, 5.0):
                store = make()
                store.call_sync(
                    lambda store=store: store.save_token(
                        digest(TOKEN),
                        "access",
                        client_id="c",
                        gitea_user_id=1,
                        gitea_login="alice",
                        resource=RESOURCE + "/mcp",
                        scopes="gitea:read",
                        family="f",
                        ttl=3600,
                    )
                )
                cost = asyncio.run(per_call_us(service(store, cache_ttl), calls))
                cache = "off" if cache_ttl == 0 else "on "
                print(f"OAuth token, {name:6} cache {cache}  {cost:7.1f} us")
                store.close()
    finally:
        redis.cleanup()


if __name__ == "__main__":
    main()
