"""Assemble the Tornado application: the route table is built here, and only here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tornado import web

from ..context import AppContext
from . import health, legacy_sse, metrics, oauth, rest, streamable, well_known
from .base import request_log_function
from .not_found import NotFoundHandler

ROUTE_MODULES = (health, well_known, oauth, rest, legacy_sse, streamable)


def make_app(ctx: AppContext, extra_handlers: list | None = None) -> web.Application:
    handlers: list = []
    for module in ROUTE_MODULES:
        handlers.extend(module.default_handlers)
    handlers.extend(extra_handlers or [])
    if metrics.serves_on_main_port(ctx.settings):
        handlers.extend(metrics.default_handlers)
    ctx.metrics.set_routes([*handlers, *metrics.default_handlers])
    return web.Application(
        handlers,
        default_handler_class=NotFoundHandler,
        log_function=counting_log_function(ctx),
        compress_response=False,  # event streams must reach the client unbuffered
        # Only the OAuth browser legs use cookies, and they bind single-use handles to the
        # browser themselves; every API request carries its credential.
        xsrf_cookies=False,
        aegis=ctx,
    )


def counting_log_function(ctx: AppContext) -> Callable[[Any], None]:
    """The access log line, then the request counted in the metrics."""

    def log_request(handler: Any) -> None:
        request_log_function(handler)
        ctx.metrics.observe_request(handler)

    return log_request
