"""``python -m tests.hardening.serve_test_tools [--port 0]``: the real entry point (settings,
audit-path check, log pipeline, signals, graceful shutdown), serving the transports' test tools
(``tests/support.py``) so that a process-level test can have slow calls in flight."""

from __future__ import annotations

import sys

import structlog

from aegis_tornado import cli
from aegis_tornado.assembly import build_context
from aegis_tornado.server import serve_until, start_server, stop_on_signals
from aegis_tornado.web.app import make_app
from tests.support import demo_tools


async def run(settings, keyring, on_listening=None) -> int:
    stop = stop_on_signals()
    ctx = build_context(settings, keyring, demo_tools())
    running = await start_server(settings, make_app, ctx)
    structlog.get_logger("aegis.server").info("listening", host=settings.host, port=running.port)
    return await serve_until(stop, running)


if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:], run=run))
