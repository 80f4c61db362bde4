"""Wire the pieces together for a real run: Gitea (or the demo double), tools, MCP, HTTP."""

from __future__ import annotations

from typing import Callable

import structlog

from .auth.keys import KeyRing
from .context import AppContext
from .server import serve_until_signalled, start_server
from .settings import Settings
from .web.app import make_app

log = structlog.get_logger("aegis.server")


async def run(settings: Settings, keyring: KeyRing,
              on_listening: Callable[[int], None] | None = None) -> int:
    ctx = AppContext.from_settings(settings, keyring)
    running = await start_server(settings, make_app, ctx)
    log.info("listening", host=settings.host, port=running.port,
             url=f"http://{settings.host}:{running.port}/mcp")
    if on_listening:
        on_listening(running.port)
    return await serve_until_signalled(running)
