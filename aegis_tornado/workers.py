"""``aegis-mcp --workers N``: N processes serving one port, one per core.

Each worker has its own listening socket on the port (``SO_REUSEPORT``), all bound by the
parent before forking (so a port in use is one line from the parent, not N from the workers).
Why not one socket that every worker accepts on: a burst of connections wakes every worker and
the first to run accepts them all, so 10 keep-alive clients measured 1.04x one worker's req/s
with two workers (``make bench``, 20261204-183432). With ``SO_REUSEPORT`` the kernel gives each
new connection to one socket by a hash of its addresses, so connections spread over the
workers; a worker that dies takes its socket with it (the others close their copies). Workers share their state through ``STATE_URL`` only: each has its own memory,
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
import socket
from collections.abc import Callable

from tornado.netutil import bind_sockets


def worker_audit_path(path: str | None, worker: int) -> str | None:
    return None if path is None else f"{path}.worker{worker}"


def bind_worker_sockets(count: int, port: int, host: str | None) -> list[list[socket.socket]]:
    """``count`` sets of listening sockets on one port (``SO_REUSEPORT``), one set per worker
    (a set: IPv4 and IPv6 when ``host`` names both). Port 0: the port the first set got.

    ``SO_REUSEPORT`` would let these join another process's listeners on the port (another
    ``aegis-mcp --workers`` started by mistake: the two would silently split the traffic), so
    the port is first bound without it, which fails while anything listens there."""
    if port:
        for probe in bind_sockets(port, host):
            probe.close()
    first = bind_sockets(port, host, reuse_port=True)
    port = first[0].getsockname()[1]
    try:
        return [first] + [bind_sockets(port, host, reuse_port=True) for _ in range(count - 1)]
    except OSError:
        for sock in first:
            sock.close()
        raise


def keep_only(mine: list[socket.socket], every: list[list[socket.socket]]) -> None:
    """Close the sockets that are not ``mine`` (inherited from the parent): a socket nobody
    accepts on would still be handed connections by the kernel, which would hang."""
    for sockets in every:
        if sockets is not mine:
            for sock in sockets:
                sock.close()


def run_workers(
    count: int, serve: Callable[[int], int], after_fork: Callable[[], None] | None = None
) -> int:
    """Fork ``count`` workers, each running ``serve(worker_index)`` to its exit status;
    ``after_fork`` runs in the parent once every worker is forked."""
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
    if after_fork is not None:
        after_fork()
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
