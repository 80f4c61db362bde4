"""Start the product for the benchmark: ``python -m aegis_tornado`` plus bench-only hooks.

Nothing here changes how the product serves a request, except where a hook is asked for:

1. **Stats on SIGUSR1.** Writes ``BENCH_STATS_FILE`` (JSON): the failed-auth limiter's entries,
   its cap and an estimate of its memory, computed in the event loop thread (only when asked,
   after a load run, so it never disturbs a measurement).
2. **``BENCH_NO_AUDIT_EVENTS=1``** replaces the audit log with one that emits nothing: the
   lower bound for "audit off", used only by the audit scenario's third variant.
3. **``BENCH_GC_STATS=1``** times every garbage collection (``gc.callbacks``) and adds counts,
   total and longest pause per generation to the SIGUSR1 stats (off in the runs: a manual probe).

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
