"""The app with its state shared in a real Redis (``STATE_URL``), and a second replica."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from aegis_tornado.assembly import build_context
from aegis_tornado.auth.keys import KeyRing
from aegis_tornado.web.app import make_app

from ..conftest import Api
from ..hardening.process import ServerProcess


@contextlib.contextmanager
def two_replicas(tmp_path: Path, module: str, **env: str) -> Iterator[list[ServerProcess]]:
    """Replicas A and B: two real product processes (``module``), each in its own directory
    under ``tmp_path``, with the same environment (``STATE_URL`` among it); both killed after."""
    started: list[ServerProcess] = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            started.append(ServerProcess(tmp_path / name, module=module, **env))
        yield started
    finally:
        for server in started:
            server.kill()


@pytest.fixture
def aegis_settings(aegis_settings, redis_url):
    return dataclasses.replace(aegis_settings, state_url=redis_url)


@pytest.fixture
def ctx(ctx, io_loop):
    yield ctx
    io_loop.run_sync(ctx.shared_calls.close)
    io_loop.run_sync(ctx.shared_streams.close)
    io_loop.run_sync(ctx.sse_relay.close)
    io_loop.run_sync(ctx.state.close)


@pytest.fixture
def replica_b(aegis_settings, registry, io_loop):
    """A second replica in this process: its own context (limiter, sessions), the same Redis."""
    ctx = build_context(aegis_settings, KeyRing(aegis_settings.api_keys), registry)
    sock, port = bind_unused_port()
    server = HTTPServer(make_app(ctx))
    server.add_sockets([sock])
    yield Api(f"http://127.0.0.1:{port}")
    server.stop()
    io_loop.run_sync(ctx.shared_calls.close)
    io_loop.run_sync(ctx.shared_streams.close)
    io_loop.run_sync(ctx.sse_relay.close)
    io_loop.run_sync(ctx.state.close)
