"""Run the double in-process (demo mode, tests) or as a process (``python -m aegis_tornado.gitea_double``)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

from .app import make_double_app
from .dataset import DEMO_TOKEN

__all__ = ["start_double", "stop_double", "main"]


async def start_double(
    host: str = "127.0.0.1", port: int = 0, **app_kwargs: Any
) -> tuple[HTTPServer, int, Application]:
    """Start a double on ``host:port`` (0 = a free port) in the running event loop.

    Returns ``(server, port, app)``; ``app_kwargs`` go to :func:`make_double_app` (``token=``,
    ``control=``, ...). Stop it with :func:`stop_double`.
    """
    app = make_double_app(**app_kwargs)
    sockets = bind_sockets(port, host)
    server = HTTPServer(app)
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1], app


async def stop_double(server: HTTPServer, app: Application | None = None) -> None:
    """Stop listening, let hanging requests go and close open connections."""
    server.stop()
    if app is not None:
        app.faults.release()  # type: ignore[attr-defined]
    await server.close_all_connections()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m aegis_tornado.gitea_double", description="Serve the Gitea 1.27 API double."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000, help="0 picks a free port")
    parser.add_argument(
        "--token", default=DEMO_TOKEN, help="the aegis-bot token (default: %(default)s)"
    )
    parser.add_argument(
        "--control", action="store_true", help="enable /__double__/{faults,requests,stats}"
    )
    args = parser.parse_args(argv)

    async def serve() -> None:
        server, port, app = await start_double(
            args.host, args.port, token=args.token, control=args.control
        )
        print(f"Gitea double listening on http://{args.host}:{port}/ (API at /api/v1)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await stop_double(server, app)

    asyncio.run(serve())
