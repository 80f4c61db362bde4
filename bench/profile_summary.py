"""Summarise a py-spy ``--format raw --threads`` profile (collapsed stacks) into shares.

Each line is ``thread (TID): NAME;frame;frame;... COUNT`` with the leaf last. py-spy leaves idle
threads out by default, so the samples are CPU (or GIL) time. Reported:

- ``threads``: share of samples per thread kind (the event loop, the Gitea worker threads, the
  log writer, ...);
- ``areas``: share of all samples whose stack passes through each area (inclusive; areas
  overlap, e.g. structlog inside a tool call);
- ``partition``: each sample counted once, per thread kind, in the first area (in ``AREAS``
  order) its stack passes through: a breakdown that adds up to 100%;
- ``top_inclusive`` / ``top_self``: the functions with the largest shares.

    python bench/profile_summary.py profile.collapsed.txt
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")

# area -> substrings of a frame's "file" or "function"; first match wins per frame
AREAS = [  # most specific first: a sample goes to the first area its stack passes through
    (
        "logging: structlog processors + JSON render + scrub",
        ("structlog/", "aegis_tornado/logs.py"),
    ),
    ("logging: stdlib logging / queue handler", ("logging/__init__.py", "logging/handlers.py")),
    ("audit calls (aegis_tornado/audit.py)", ("aegis_tornado/audit.py",)),
    ("access log (request_log_function)", ("request_log_function",)),
    ("tool: validation/policy/sanitize", ("aegis_tornado/tools/",)),
    (
        "requests: proxy settings read from os.environ per request (trust_env)",
        (
            "getproxies_environment",
            "get_environ_proxies",
            "should_bypass_proxies",
            "proxy_bypass",
            "_Environ",
            "_createenviron",
            "getproxies",
        ),
    ),
    ("Gitea client (aegis_tornado/gitea/client.py)", ("aegis_tornado/gitea/",)),
    (
        "requests + urllib3 + http.client",
        (
            "requests/",
            "urllib3/",
            "http/client.py",
            "requests_futures/",
            "email/feedparser",
            "email/parser",
            "typing.py",
        ),
    ),
    (
        "thread pool hop (concurrent.futures, wrap_future)",
        (
            "concurrent/futures/",
            "wrap_future",
            "_chain_future",
            "_copy_future_state",
            "_set_state",
            "_call_check_cancel",
            "call_soon_threadsafe",
        ),
    ),
    ("uuid4 (request ids)", ("uuid.py",)),
    ("auth (keys, limiter, client IP)", ("aegis_tornado/auth/",)),
    ("base handler (prepare, auth, errors)", ("aegis_tornado/web/base.py",)),
    ("MCP transports + core (web/, mcp/)", ("aegis_tornado/web/", "aegis_tornado/mcp/")),
    ("json encode/decode", ("json/",)),
    ("tornado HTTP server", ("tornado/",)),
    ("asyncio event loop", ("asyncio/", "selectors.py")),
]


def _parse(text: str):
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        frames = m.group("stack").split(";")
        yield frames[0], frames[1:], int(m.group("count"))


def _thread_kind(head: str) -> str:
    name = head.split(":", 1)[-1].strip()
    if name == "MainThread":
        return "event loop (MainThread)"
    if name.startswith("aegis-gitea") or name.startswith("ThreadPoolExecutor"):
        return "HTTP worker threads (requests-futures pool)"
    if "_monitor" in name or "Listener" in name or name.startswith("Thread-"):
        return "log writer thread (QueueListener) / other"
    return name


def summarise_collapsed(text: str, top: int = 15) -> dict:
    total = 0
    threads: Counter = Counter()
    areas: Counter = Counter()
    inclusive: Counter = Counter()
    self_: Counter = Counter()
    main_total = 0
    main_areas: Counter = Counter()
    exclusive: Counter = Counter()
    for head, frames, count in _parse(text):
        total += count
        kind = _thread_kind(head)
        threads[kind] += count
        seen_areas, seen_funcs = set(), set()
        for frame in frames:
            m = _FRAME.match(frame)
            func, file = (m.group("func"), m.group("file")) if m else (frame, "")
            key = f"{func} ({file})"
            seen_funcs.add(key)
            for area, needles in AREAS:
                if any(n in file or n in func for n in needles):
                    seen_areas.add(area)
                    break
        order = [a for a, _ in AREAS]
        owner = min(seen_areas, key=order.index) if seen_areas else "other"
        exclusive[f"{kind.split(' (')[0]}: {owner}"] += count
        for area in seen_areas:
            areas[area] += count
            if kind.startswith("event loop"):
                main_areas[area] += count
        if kind.startswith("event loop"):
            main_total += count
        for key in seen_funcs:
            inclusive[key] += count
        if frames:
            m = _FRAME.match(frames[-1])
            self_[f"{m.group('func')} ({m.group('file')})" if m else frames[-1]] += count

    def pct(counter: Counter, denominator: int, n: int | None = None) -> dict:
        items = counter.most_common(n)
        return {k: round(100.0 * v / max(1, denominator), 1) for k, v in items}

    return {
        "samples": total,
        "threads_pct": pct(threads, total),
        "areas_pct_of_all": pct(areas, total),
        # each sample counted once, in the first area of AREAS its stack passes through
        "partition_pct": pct(exclusive, total),
        "areas_pct_of_event_loop": pct(main_areas, main_total),
        "top_inclusive_pct": pct(inclusive, total, top),
        "top_self_pct": pct(self_, total, top),
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        print(json.dumps(summarise_collapsed(fh.read()), indent=1))
