"""``aegis-mcp --workers N``: N processes serving one listening socket, one per core.

The socket is bound once, before forking, and every worker accepts on it (the kernel spreads
connections). Workers share their state through ``STATE_URL`` only: each has its own memory,
so without a shared store each would keep its own limiter (N x MAX_AUTH_FAILURES guesses) and
the CLI refuses. Each worker writes its own audit file (``<AUDIT_LOG_PATH>.worker<i>``): the
audit chain is one sequence per file, which N writers to one file would break.

Why not ``tornado.process.fork_processes``: its parent never returns and does not pass signals
on, so SIGTERM to the parent (what ``docker stop`` sends) would orphan the workers. The parent
here forwards SIGTERM, SIGINT and SIGHUP (key reload) to every worker, waits for them, and
exits with the first non-zero status. A worker that dies on its own ends the others: the
container's or the service manager's restart policy restarts the whole set, so a broken
worker is never silently one core short.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable


def worker_audit_path(path: str | None, worker: int) -> str | None:
    return None if path is None else f"{path}.worker{worker}"


def run_workers(count: int, serve: Callable[[int], int]) -> int:
    """Fork ``count`` workers, each running ``serve(worker_index)`` to its exit status."""
    workers: dict[int, int] = {}
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if signum != signal.SIGHUP:
            stopping = True
        for pid in list(workers):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    # Installed before forking, then reset in each worker (whose asyncio loop installs its own):
    # a signal in between is forwarded, not lost.
    previous = {
        s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    for index in range(count):
        pid = os.fork()
        if pid == 0:  # the worker
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            status = 1
            try:
                status = serve(index)
            finally:
                os._exit(status)
        workers[pid] = index
    status = 0
    while workers:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        workers.pop(pid, None)
        code = os.waitstatus_to_exitcode(wait_status)
        if code != 0 and status == 0:
            status = code if code > 0 else 1
        if not stopping and workers:
            # One died on its own: stop the rest so the whole set is restarted.
            forward(signal.SIGTERM, None)
    return status
