"""The HTTP server, guarded against connection exhaustion.

Tornado's ``HTTPServer`` accepts every connection it can and keeps it while its headers trickle
in (up to the idle timeout), and its accept loop raises on ``EMFILE``: asyncio then logs a
traceback and calls it again at once, pinning a core and flooding the log. Here:

- connections are capped in total and per client address (the TCP peer; ``TRUSTED_PROXIES``
  are exempt from the per-address cap). A connection over a cap is closed as soon as it is
  accepted, before anything is read;
- a new connection must finish its first request's headers within ``HTTP_HEADER_TIMEOUT``;
  later requests on a keep-alive connection get ``HTTP_IDLE_TIMEOUT`` as before;
- when ``accept`` fails for lack of file descriptors or memory, the listener pauses for a
  moment instead of spinning, and one warning line per ``LOG_EVERY`` seconds says how often.
"""

from __future__ import annotations

import errno
import ipaddress
import resource
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from tornado import httputil, iostream
from tornado.http1connection import HTTP1ServerConnection
from tornado.httpserver import HTTPServer, _HTTPRequestContext
from tornado.ioloop import IOLoop

log = structlog.get_logger("aegis.http")

#: Errors of ``accept`` that mean "no resources now": wait, do not spin.
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
#: How long the listener rests after such an error.
ACCEPT_PAUSE = 0.1
#: At most one line per this many seconds for each kind of refused or failed connection.
LOG_EVERY = 10.0
#: File descriptors kept for the server's own use (log files, Gitea connections, Redis...).
FD_RESERVE = 64


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def connection_limit(configured: int, open_files: int) -> int:
    """``MAX_CONNECTIONS``, or when 0 the open-files limit less the server's reserve."""
    if configured:
        return configured
    if open_files == resource.RLIM_INFINITY or open_files > 1_000_000:
        return 1_000_000
    return max(16, open_files - FD_RESERVE)


class _Throttled:
    """A warning logged at most once per ``LOG_EVERY`` seconds, with a count of what it sums."""

    def __init__(self, event: str) -> None:
        self.event = event
        self.count = 0
        self._last = float("-inf")

    def note(self, **fields: Any) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._last >= LOG_EVERY:
            self._last = now
            log.warning(self.event, count=self.count, **fields)
            self.count = 0


class _FirstHeadersWatch(httputil.HTTPMessageDelegate):
    """Passes a request through, noting that its headers arrived."""

    def __init__(self, delegate: httputil.HTTPMessageDelegate, state: _Connection) -> None:
        self._delegate = delegate
        self._state = state

    def headers_received(self, start_line, headers):
        self._state.headers_seen = True
        return self._delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes):
        return self._delegate.data_received(chunk)

    def finish(self) -> None:
        self._delegate.finish()

    def on_connection_close(self) -> None:
        self._delegate.on_connection_close()


class _Connection:
    __slots__ = ("address", "stream", "headers_seen", "timer")

    def __init__(self, address: str, stream: iostream.IOStream) -> None:
        self.address = address
        self.stream = stream
        self.headers_seen = False
        self.timer: object | None = None


class GuardedHTTPServer(HTTPServer):
    def initialize(  # type: ignore[override]
        self,
        request_callback: Any,
        *,
        max_connections: int,
        max_connections_per_ip: int,
        header_timeout: float,
        exempt: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
        **kwargs: Any,
    ) -> None:
        super().initialize(request_callback, **kwargs)
        self.max_connections = max_connections
        self.max_connections_per_ip = max_connections_per_ip
        self.header_timeout = header_timeout
        self._exempt = tuple(exempt)
        self._open: dict[HTTP1ServerConnection, _Connection] = {}
        self._per_address: dict[str, int] = {}
        self._refused = _Throttled("connections_refused")
        self._accept_failed = _Throttled("accept_failed")
        self._accepting: dict[int, Callable[[], None]] = {}

    # --- accepting -------------------------------------------------------------------------

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)

    def _accept_on(self, sock: socket.socket) -> Callable[[], None]:
        io_loop = IOLoop.current()
        state = {"removed": False, "paused": False}

        def resume() -> None:
            if not state["removed"] and state["paused"]:
                state["paused"] = False
                io_loop.add_handler(sock, on_readable, IOLoop.READ)

        def on_readable(fd: Any, events: int) -> None:
            for _ in range(128):
                if state["removed"] or state["paused"]:
                    return
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as error:
                    if error.errno not in _RESOURCE_ERRORS:
                        raise
                    # Out of descriptors: the pending connection stays in the backlog. Rest
                    # instead of spinning on a listener that stays readable.
                    self._accept_failed.note(error=errno.errorcode.get(error.errno or 0, "?"))
                    state["paused"] = True
                    io_loop.remove_handler(sock)
                    io_loop.call_later(ACCEPT_PAUSE, resume)
                    return
                self._handle_connection(connection, address)

        def remove() -> None:
            if not state["paused"]:
                io_loop.remove_handler(sock)
            state["removed"] = True

        io_loop.add_handler(sock, on_readable, IOLoop.READ)
        return remove

    def _over_cap(self, address: str) -> str | None:
        if len(self._open) >= self.max_connections:
            return "total"
        if self._per_address.get(address, 0) >= self.max_connections_per_ip:
            try:
                peer = ipaddress.ip_address(address)
            except ValueError:
                return "per_ip"
            if not any(peer in network for network in self._exempt):
                return "per_ip"
        return None

    def handle_stream(self, stream: iostream.IOStream, address: Any) -> None:
        peer = str(address[0]) if isinstance(address, tuple) and address else str(address)
        cap = self._over_cap(peer)
        if cap is not None:
            self._refused.note(cap=cap, client_ip=peer)
            stream.close()
            return
        context = _HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        conn = HTTP1ServerConnection(stream, self.conn_params, context)
        state = _Connection(peer, stream)
        self._open[conn] = state
        self._per_address[peer] = self._per_address.get(peer, 0) + 1
        state.timer = IOLoop.current().call_later(self.header_timeout, self._check_headers, state)
        self._connections.add(conn)
        conn.start_serving(self)

    def _check_headers(self, state: _Connection) -> None:
        state.timer = None
        if not state.headers_seen and not state.stream.closed():
            state.stream.close()

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        delegate = super().start_request(server_conn, request_conn)
        state = self._open.get(server_conn)  # type: ignore[call-overload]
        if state is None or state.headers_seen:
            return delegate
        return _FirstHeadersWatch(delegate, state)

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        state = self._open.pop(server_conn, None)  # type: ignore[call-overload]
        if state is None:
            return
        if state.timer is not None:
            IOLoop.current().remove_timeout(state.timer)
        remaining = self._per_address.get(state.address, 1) - 1
        if remaining:
            self._per_address[state.address] = remaining
        else:
            self._per_address.pop(state.address, None)

    @property
    def open_connections(self) -> int:
        return len(self._open)
