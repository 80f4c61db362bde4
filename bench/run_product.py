"""Start the product for the benchmark: ``python -m aegis_tornado`` plus bench-only hooks.

Nothing here changes how the product serves a request, except where a hook is asked for:

1. **Stats on SIGUSR1.** Writes ``BENCH_STATS_FILE`` (JSON): the failed-auth limiter's entries,
   its cap and an estimate of its memory, computed in the event loop thread (only when asked,
   after a load run, so it never disturbs a measurement).
2. **``BENCH_NO_AUDIT_EVENTS=1``** replaces the audit log with one that emits nothing: the
   lower bound for "audit off", used only by the audit scenario's third variant.
3. **``BENCH_GC_STATS=1``** times every garbage collection (``gc.callbacks``) and adds counts,
   total and longest pause per generation to the SIGUSR1 stats (off in the runs: a manual probe).
4. **``BENCH_OAUTH_TOKEN_FILE=<path>``** (with ``OAUTH_ENABLED``): once the OAuth service is
   built, seeds its store with a client, a user's sealed Gitea tokens and an MCP access token,
   through the store's and the vault's own methods (the bench's fake Gitea has no OAuth
   provider to sign in through), then writes the access token to ``<path>``. Requests with
   that token take the product's real OAuth path: token lookup, scopes, the user's Gitea token
   from the vault on every Gitea call.

Usage: the same environment and flags as ``python -m aegis_tornado``.
"""

from __future__ import annotations

import json
import os
import signal
import sys

TOOL = "get_file_contents"
STATE: dict = {"ctx": None, "tool_source": None}


def _tables(limiter) -> list[dict]:
    """The limiter's per-client tables, whatever its current layout names them (bench-only
    introspection: one dict ``_failures`` before, ``_watching`` + ``_blocked`` since)."""
    names = ("_failures", "_watching", "_blocked")
    return [t for t in (getattr(limiter, n, None) for n in names) if isinstance(t, dict)]


def _deep_size(limiter) -> int:
    """Bytes held by the limiter's tables: the dicts, their keys, lists and floats."""
    total = 0
    for table in _tables(limiter):
        total += sys.getsizeof(table)
        for ip, times in list(table.items()):
            total += sys.getsizeof(ip) + sys.getsizeof(times)
            total += sum(sys.getsizeof(t) for t in times)
    return total


def _dump_stats(*_):
    ctx = STATE["ctx"]
    path = os.environ.get("BENCH_STATS_FILE")
    if ctx is None or not path:
        return
    limiter = ctx.limiter
    stats = {
        "tool_source": STATE["tool_source"],
        "limiter_entries": len(limiter),
        "limiter_cap": limiter.max_tracked,
        "limiter_bytes": _deep_size(limiter),
        "limiter_blocked": sum(
            1
            for table in _tables(limiter)
            for t in list(table.values())
            if len(t) >= limiter.max_failures
        ),
    }
    if os.environ.get("BENCH_GC_STATS") == "1":
        import gc

        stats["gc"] = {
            "collections": GC["counts"],
            "total_ms": {g: round(v * 1000, 1) for g, v in GC["pauses"].items()},
            "max_ms": {g: round(v, 2) for g, v in GC["max_ms"].items()},
            "tracked_objects": len(gc.get_objects()),
        }
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(stats, fh)
    os.replace(tmp, path)


GC = {
    "pauses": {0: 0.0, 1: 0.0, 2: 0.0},
    "counts": {0: 0, 1: 0, 2: 0},
    "max_ms": {0: 0.0, 1: 0.0, 2: 0.0},
    "_t": 0.0,
}


def _gc_callback(phase, info):
    import time

    if phase == "start":
        GC["_t"] = time.perf_counter()
        return
    gen = info["generation"]
    took = time.perf_counter() - GC["_t"]
    GC["pauses"][gen] += took
    GC["counts"][gen] += 1
    GC["max_ms"][gen] = max(GC["max_ms"][gen], took * 1000)


#: The seeded OAuth user (bench only).
OAUTH_USER_ID, OAUTH_LOGIN, OAUTH_CLIENT = 4242, "bench-user", "bench-client"


async def _seed_oauth(service, path: str) -> None:
    import functools
    import time

    from aegis_tornado.oauth.gitea_login import GiteaTokens
    from aegis_tornado.oauth.tokens import ACCESS_PREFIX, digest, new_token

    store = service.store
    metadata = {"client_name": "bench", "redirect_uris": ["http://127.0.0.1/callback"]}
    await store.call(store.add_client, OAUTH_CLIENT, metadata, "dcr", None)
    year = time.time() + 365 * 86400
    await service.vault.put(
        OAUTH_USER_ID, OAUTH_LOGIN, GiteaTokens("bench-gitea-user-token", "bench-refresh", year)
    )
    token = new_token(ACCESS_PREFIX)
    save = functools.partial(
        store.save_token,
        digest(token),
        "access",
        client_id=OAUTH_CLIENT,
        gitea_user_id=OAUTH_USER_ID,
        gitea_login=OAUTH_LOGIN,
        resource=service.resource,
        scopes="gitea:read",
        family=new_token("bench_family_"),
        ttl=86400.0,
    )
    await store.call(save)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(token)
    os.replace(tmp, path)


class _NullAudit:
    def __getattr__(self, name):
        return lambda *a, **k: None


def install_hooks() -> None:
    from aegis_tornado import assembly

    original = assembly.build_context

    def build_context(settings, keyring, registry):
        ctx = original(settings, keyring, registry)
        STATE["tool_source"] = "product" if ctx.mcp.registry.get(TOOL) else "missing"
        if os.environ.get("BENCH_NO_AUDIT_EVENTS") == "1":
            ctx.audit = _NullAudit()
        STATE["ctx"] = ctx
        return ctx

    assembly.build_context = build_context
    token_file = os.environ.get("BENCH_OAUTH_TOKEN_FILE")
    if token_file:
        import asyncio

        original_oauth = assembly.build_oauth

        def build_oauth(*args, **kwargs):
            service = original_oauth(*args, **kwargs)
            task = asyncio.get_running_loop().create_task(_seed_oauth(service, token_file))
            STATE["oauth_seed"] = task  # keep a reference until it is done
            return service

        assembly.build_oauth = build_oauth
    signal.signal(signal.SIGUSR1, _dump_stats)
    if os.environ.get("BENCH_GC_STATS") == "1":
        import gc

        gc.callbacks.append(_gc_callback)


def main() -> int:
    install_hooks()
    from aegis_tornado.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
