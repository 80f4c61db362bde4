"""Classify the syscalls of the product's event-loop thread from an strace log.

``strace -p PID`` (no ``-f``) traces only the main thread, which is the Tornado/asyncio event
loop. Every write/send/read is matched to what its file descriptor is (a client socket, a Gitea
socket, a file, a pipe, the eventfd/self-pipe that wakes the loop), so the report can say
whether the loop does any disk or upstream-network I/O itself.
"""

from __future__ import annotations

import re
from collections import Counter

_CALL = re.compile(r"^(?:\d+\s+)?(?P<name>\w+)\((?P<fd>-?\d+)?")


def classify_trace(text: str, fds: dict) -> dict:
    counts: Counter = Counter()
    for line in text.splitlines():
        m = _CALL.match(line)
        if not m or line.startswith("+++") or line.startswith("---"):
            continue
        name = m.group("name")
        if name in ("openat", "connect") and m.group("fd") is None:
            counts[f"{name}"] += 1
            continue
        fd = int(m.group("fd")) if m.group("fd") is not None else None
        if name == "openat":
            counts["openat (a file opened)"] += 1
            continue
        kind = fds.get(fd, "unknown fd" if fd is not None else "")
        if fd in (1, 2):
            kind = "stdout/stderr"
        if kind.startswith("file:"):
            kind = "file"
        counts[f"{name} on {kind}"] += 1
    disk = sum(
        v
        for k, v in counts.items()
        if (
            " on file" in k
            or "stdout" in k
            or k.startswith(("fsync", "fdatasync", "pwrite64", "openat"))
        )
    )
    upstream = sum(v for k, v in counts.items() if "gitea socket" in k or k.startswith("connect"))
    return {
        "syscalls": dict(counts.most_common()),
        "disk_or_stdout_calls": disk,
        "upstream_network_calls": upstream,
        "verdict": "no disk, stdout or upstream I/O on the event loop"
        if disk == 0 and upstream == 0
        else "the event loop does disk/stdout/upstream I/O",
    }
