"""Run the server: listen, serve until SIGTERM/SIGINT, then shut down gracefully.

Shutdown order: stop accepting connections (new requests on open keep-alive connections get
503), end the open event streams once they have sent the replies they owe, give in-flight
requests ``SHUTDOWN_TIMEOUT`` seconds to finish, close the Gitea client, and flush the log
pipeline, so that every audit line of every request that was answered is on disk when the
process exits.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from . import reload
from .context import AppContext
from .settings import Settings
from .tools.secrets import warm_up as secrets_warm_up
from .web.connections import GuardedHTTPServer, connection_limit, raise_open_files_limit

log = structlog.get_logger("aegis.server")


@dataclass
class RunningServer:
    """What ``start_server`` started, and how to stop it."""

    ctx: AppContext
    http_server: HTTPServer
    port: int
    #: The separate metrics listener (METRICS_PORT), if any.
    metrics_server: HTTPServer | None = None
    metrics_port: int | None = None
    cleanups: list[Callable[[], Awaitable[None] | None]] = field(default_factory=list)

    async def shutdown(self) -> bool:
        """Graceful shutdown; True when every in-flight request finished in time."""
        ctx = self.ctx
        ctx.requests.shutting_down = True
        self.http_server.stop()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        for stream in ctx.requests.streams:
            stream.end(drain=True)
        finished = await ctx.requests.wait_idle(ctx.settings.shutdown_timeout)
        log.info("server_stopping", drained=finished, unfinished_requests=ctx.requests.in_flight)
        try:
            await asyncio.wait_for(self.http_server.close_all_connections(), 2)
        except asyncio.TimeoutError:
            pass
        for cleanup in reversed(self.cleanups):
            result = cleanup()
            if asyncio.iscoroutine(result):
                await result
        return finished


def make_http_server(app: Any, settings: Settings, open_files: int | None = None) -> HTTPServer:
    """The HTTP server as production runs it (tests build theirs here too)."""
    if open_files is None:
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return GuardedHTTPServer(
        app,
        xheaders=False,  # forwarded headers are believed only from TRUSTED_PROXIES
        # Slow or stalled clients must not hold connections forever (slowloris). Tornado applies
        # the idle timeout to reading a request's headers as well as to idle keep-alive
        # connections, and the body timeout to the whole body; a new connection gets the much
        # shorter header timeout for its first request.
        idle_connection_timeout=settings.http_idle_timeout,
        body_timeout=settings.http_body_timeout,
        # Tornado's own ceiling; the handlers refuse anything over MAX_BODY_BYTES with a 413.
        max_body_size=max(settings.max_body_bytes * 4, 16 * 1024 * 1024),
        max_connections=connection_limit(settings.max_connections, open_files),
        max_connections_per_ip=settings.max_connections_per_ip,
        header_timeout=settings.http_header_timeout,
        exempt=settings.trusted_proxies,
    )


async def start_server(
    settings: Settings,
    build_app: Callable[[AppContext], Any],
    ctx: AppContext,
    sockets: list[socket.socket] | None = None,
) -> RunningServer:
    open_files = raise_open_files_limit()
    # The secret scanner's keyword engine is built before the first connection is accepted,
    # in a thread (the loop stays free for signals), not on the loop at the first tool call.
    await asyncio.get_running_loop().run_in_executor(None, secrets_warm_up)
    http_server = make_http_server(build_app(ctx), settings, open_files)
    if sockets is None:
        sockets = bind_sockets(settings.port, settings.host)
    http_server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    reload.install(ctx)  # SIGHUP reloads the keys (when the command line asked for it)
    running = RunningServer(ctx=ctx, http_server=http_server, port=port)
    if settings.metrics_port is not None:
        running.metrics_server, running.metrics_port = start_metrics_server(ctx, settings)
        log.info("metrics_listening", host=settings.metrics_host, port=running.metrics_port)
    # Everything alive now (modules, settings, the app) lives as long as the process: keep it
    # out of the garbage collector's full passes, which stop the event loop.
    gc.freeze()
    return running


def start_metrics_server(ctx: AppContext, settings: Settings) -> tuple[HTTPServer, int]:
    """GET /metrics alone, on METRICS_HOST:METRICS_PORT (a scraper's network, not the
    Internet's)."""
    from .web.app import counting_log_function
    from .web.metrics import make_metrics_app

    server = make_http_server(make_metrics_app(ctx, counting_log_function(ctx)), settings)
    sockets = bind_sockets(settings.metrics_port or 0, settings.metrics_host)
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1]


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT. Installed before listening, so that a signal arriving
    right after start-up is a graceful stop, not the default kill."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def serve_until(stop: asyncio.Event, running: RunningServer) -> int:
    """Serve until ``stop`` is set, then shut down; the process exit status."""
    await stop.wait()
    log.info("shutdown_signal_received")
    await running.shutdown()
    return 0
