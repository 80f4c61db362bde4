"""Shared fixtures: the real application on a random port, with its log pipeline captured.

Decorate a test with ``@with_settings(field=value, ...)`` to run the app with other settings,
and override the ``registry`` fixture to serve other tools.
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from aegis_tornado.assembly import build_context, build_keyring
from aegis_tornado.auth.keys import parse_key
from aegis_tornado.logs import SecretScrubber, configure_logging
from aegis_tornado.settings import Settings
from aegis_tornado.web.app import make_app

from . import support
from .support import demo_tools

KEY = "73bb1be4017875dc532cd855c009b11ce38343f7c786edeee13c5317b1a303be"
OTHER_KEY = "612023b1dd1e6d0bda124b6d24833a5fa17abc89b98707cff0fb1f7d71e0888c"
UNKNOWN_KEY = "eff3db891a67514c4b9b5395386ceeac691cc7b9a103846e6312dfb926022a18"


@pytest.fixture(autouse=True)
def fresh_support_records():
    """support.py's records of started and cancelled calls start empty in every test, so one
    test's leftovers can neither satisfy nor break another's assertions."""
    support.CANCELLED.clear()
    support.STARTED.clear()
    yield
    support.CANCELLED.clear()
    support.STARTED.clear()


@pytest.fixture
def settings_overrides(request) -> dict[str, Any]:
    return getattr(request, "param", {})


def with_settings(**overrides: Any):
    """Run a test against an app whose Settings differ from the default test settings."""
    return pytest.mark.parametrize(
        "settings_overrides", [overrides], indirect=True, ids=lambda o: ",".join(sorted(o))
    )


@pytest.fixture
def aegis_settings(tmp_path, settings_overrides) -> Settings:
    base = Settings(
        gitea_url="http://127.0.0.1:9",
        api_keys=(parse_key(KEY, name="primary"), parse_key(OTHER_KEY)),
        audit_log_path=str(tmp_path / "audit.log"),
        log_level="debug",
        sse_keepalive=0.2,
        shutdown_timeout=2.0,
    )
    return dataclasses.replace(base, **settings_overrides)


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server of the test run's own (random port, temporary directory)."""
    from .redis_server import BINARY, RedisServer

    if BINARY is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The URL of a running, empty Redis (restarted if a test stopped it)."""
    if redis_server.proc is None:
        redis_server.start()
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture
def registry():
    return demo_tools()


class CapturedLogs:
    """Everything the app logged: stdout lines and the audit file, as parsed JSON."""

    def __init__(self, runtime, stream: io.StringIO, audit_path: str | None):
        self.runtime = runtime
        self.stream = stream
        self.audit_path = audit_path

    def stdout_text(self) -> str:
        self.runtime.flush()
        return self.stream.getvalue()

    def audit_text(self) -> str:
        self.runtime.flush()
        if not self.audit_path:
            return ""
        with open(self.audit_path, encoding="utf-8") as handle:
            return handle.read()

    def stdout(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout_text().splitlines() if line.strip()]

    def audit(self, event: str | None = None) -> list[dict]:
        records = [json.loads(line) for line in self.audit_text().splitlines() if line.strip()]
        return [r for r in records if event is None or r["event"] == event]


@pytest.fixture
def logs(aegis_settings):
    stream = io.StringIO()
    keys = build_keyring(aegis_settings)
    runtime = configure_logging(
        aegis_settings.log_level,
        aegis_settings.audit_log_path,
        SecretScrubber([k.digest for k in keys], [aegis_settings.gitea_token]),
        stream=stream,
        cache_loggers=False,
    )
    yield CapturedLogs(runtime, stream, aegis_settings.audit_log_path)
    runtime.stop()


@pytest.fixture
def ctx(aegis_settings, logs, registry):
    return build_context(aegis_settings, build_keyring(aegis_settings), registry)


@pytest.fixture
def app(ctx):
    return make_app(ctx)


class Api:
    """Requests to the running server; never raises on HTTP errors."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = AsyncHTTPClient()

    async def request(
        self,
        path: str,
        method: str = "GET",
        *,
        key: str | None = KEY,
        headers: dict[str, str] | None = None,
        body: Any = None,
        json_body: Any = None,
        **kwargs,
    ) -> HTTPResponse:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers.setdefault("Authorization", f"Bearer {key}")
        if json_body is not None:
            body = json.dumps(json_body)
            all_headers.setdefault("Content-Type", "application/json")
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        return await self.http.fetch(
            self.base_url + path,
            method=method,
            headers=all_headers,
            body=body,
            raise_error=False,
            allow_nonstandard_methods=True,
            request_timeout=20,
            **kwargs,
        )

    async def mcp(
        self, message: Any, *, headers: dict[str, str] | None = None, key: str | None = KEY
    ) -> HTTPResponse:
        all_headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            **(headers or {}),
        }
        return await self.request(
            "/mcp", "POST", key=key, headers=all_headers, body=json.dumps(message)
        )


@pytest.fixture
def api(app, http_server, base_url) -> Api:
    return Api(base_url)


def body_json(response: HTTPResponse) -> Any:
    return json.loads(response.body)
