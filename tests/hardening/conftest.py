"""Fixtures for the hardening suite: the server as production builds it, checked after every test.

- ``http_server`` is overridden so the server under attack is the one ``aegis_tornado.server``
  builds (its timeouts and body ceiling), not pytest-tornado's bare ``HTTPServer``.
- ``api`` is overridden to check, after each test, the invariants no attack may break: every
  request finished (in-flight count and open streams back to zero), no 5xx was answered, nothing
  was logged as an unhandled exception, and no key ever reached stdout or the audit file.
- ``live_server`` runs the same server on its own thread for the property-based tests, which
  drive it with blocking clients (Hypothesis shrinks failing examples only in synchronous tests).

Fuzzing budget: ``AEGIS_FUZZ_EXAMPLES`` (default sized for CI; e.g. 2000 for a long run).
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import io
import json
import os
import socket
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from aegis_tornado.assembly import build_context
from aegis_tornado.auth.keys import KeyRing, parse_key
from aegis_tornado.logs import SecretScrubber, configure_logging
from aegis_tornado.server import make_http_server
from aegis_tornado.settings import Settings
from aegis_tornado.web.app import make_app

from ..conftest import KEY, OTHER_KEY, Api
from ..support import demo_tools

FUZZ_EXAMPLES = int(os.environ.get("AEGIS_FUZZ_EXAMPLES", "100"))

settings.register_profile(
    "aegis-fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,  # no timing assertions: performance is measured elsewhere
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
    print_blob=True,
)
#: Decorator for every property-based test of the suite.
FUZZ = settings.get_profile("aegis-fuzz")

SECRETS = (KEY, OTHER_KEY)

#: Log events that mean the server met something it did not handle.
UNHANDLED_EVENTS = ("unhandled_exception", "mcp_internal_error", "http_error")
UNHANDLED_PREFIXES = (
    "Uncaught exception",
    "Exception in callback",
    "Exception in exception handler",
    "Task exception was never retrieved",
    "Task was destroyed but it is pending",
    "Error in exception handler",
    "Future exception was never retrieved",
)


def problems_in_logs(stdout_text: str, audit_text: str) -> list[str]:
    """What the logs say went wrong on the server side (empty when nothing did)."""
    problems = []
    for number, line in enumerate(stdout_text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            problems.append(f"stdout line {number} is not JSON: {line[:200]}")
            continue
        event = str(record.get("event"))
        if event in UNHANDLED_EVENTS or event.startswith(UNHANDLED_PREFIXES):
            problems.append(f"unhandled: {line[:600]}")
        if event == "http_request" and record.get("status", 0) >= 500:
            problems.append(f"answered {record['status']}: {line[:300]}")
    for number, line in enumerate(audit_text.splitlines(), start=1):
        try:
            json.loads(line)
        except ValueError:
            problems.append(f"audit line {number} is not JSON: {line[:200]}")
    for secret in SECRETS:
        if secret in stdout_text or secret in audit_text:
            problems.append("a configured key appears in the logs")
    return problems


async def wait_until(condition, timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(interval)
    return condition()


def drained(ctx) -> bool:
    """Nothing left running: requests, event streams, legacy sessions and their tasks, and the
    tool calls registered for cancellation (per session, and per key for sessionless ones)."""
    legacy_tasks = sum(len(s.tasks) for s in ctx.legacy_sessions._sessions.values())
    calls = sum(len(s.in_flight) for s in ctx.sessions._sessions.values())
    calls += sum(len(table) for table in ctx.sessions._stateless.values())
    return (
        ctx.requests.in_flight == 0
        and not ctx.requests.streams
        and len(ctx.legacy_sessions) == 0
        and legacy_tasks == 0
        and calls == 0
    )


# --- the in-process server, with invariants checked after each test --------------------------


@pytest.fixture
def http_server(request, io_loop, _unused_port, app, aegis_settings):
    server = make_http_server(app, aegis_settings)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=10)


@pytest.fixture
def port(http_port) -> int:
    return http_port


@pytest.fixture
def api(app, http_server, base_url, logs, ctx, io_loop):
    client = Api(base_url)
    yield client
    # Let whatever the test left behind (abandoned streams, cancelled calls) wind down, then
    # check that it did and that nothing went wrong on the way.
    still_running = not io_loop.run_sync(lambda: wait_until(lambda: drained(ctx), 5), timeout=10)
    problems = problems_in_logs(logs.stdout_text(), logs.audit_text())
    if still_running:
        problems.append(
            f"not drained: in_flight={ctx.requests.in_flight} streams={len(ctx.requests.streams)}"
            f" legacy_sessions={len(ctx.legacy_sessions)}"
        )
    assert not problems, "\n".join(problems)


# --- raw connections -------------------------------------------------------------------------


class RawConnection:
    """A TCP connection for requests no well-behaved client would send."""

    def __init__(self, port: int):
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.port = port

    async def __aenter__(self) -> RawConnection:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc) -> None:
        self.writer.close()

    async def send(self, data: bytes) -> bool:
        """Send; False when the server already closed the connection."""
        try:
            self.writer.write(data)
            await self.writer.drain()
            return True
        except (ConnectionError, OSError):
            return False

    async def response(self, timeout: float = 5.0) -> tuple[int | None, dict[str, str], bytes]:
        """Status, headers and body of one response (None status: closed without answering)."""
        try:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None, {}, b""
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        try:
            if "content-length" in headers:
                body = await asyncio.wait_for(
                    self.reader.readexactly(int(headers["content-length"])), timeout
                )
            elif headers.get("transfer-encoding") == "chunked":
                while True:
                    size = int(
                        (await asyncio.wait_for(self.reader.readline(), timeout)).strip(), 16
                    )
                    chunk = await asyncio.wait_for(self.reader.readexactly(size + 2), timeout)
                    if size == 0:
                        break
                    body += chunk[:-2]
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        return status, headers, body

    async def still_open_after(self, seconds: float) -> bool:
        """Read for ``seconds``; True when the server did not close the connection meanwhile."""
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    if not await asyncio.wait_for(self.reader.read(65536), left):
                        return False
                except asyncio.TimeoutError:
                    return True
        except ConnectionError:
            return False
        return True

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection within ``timeout`` (reads the rest)."""
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not data:
                    return True
        except asyncio.TimeoutError:
            return False
        except ConnectionError:
            return True


def request_bytes(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    key: str | None = KEY,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    all_headers = dict(headers or {})
    if key is not None:
        all_headers.setdefault("Authorization", f"Bearer {key}")
    if body and "Content-Length" not in all_headers and "Transfer-Encoding" not in all_headers:
        all_headers["Content-Length"] = str(len(body))
    lines += [f"{name}: {value}" for name, value in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --- the server on a thread, for property-based tests ----------------------------------------


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return strict_json(self.body)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def strict_json(data: bytes | str) -> Any:
    """Parse as a strict client would: UTF-8, no NaN/Infinity."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return json.loads(text, parse_constant=_reject_constant)


class LiveServer:
    """The real server on its own thread and event loop, with its logs captured."""

    def __init__(self, settings: Settings, registry) -> None:
        self.settings = settings
        self.stream = io.StringIO()
        keyring = KeyRing(settings.api_keys)
        self.runtime = configure_logging(
            settings.log_level,
            settings.audit_log_path,
            SecretScrubber([k.digest for k in keyring], [settings.gitea_token]),
            stream=self.stream,
            cache_loggers=False,
        )
        self._registry = registry
        self._started = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ctx = None
        self.port = 0
        self._thread = threading.Thread(target=self._serve, name="aegis-live", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the live server did not start")

    def _serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.ctx = build_context(self.settings, KeyRing(self.settings.api_keys), self._registry)
        self.server = make_http_server(make_app(self.ctx), self.settings)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.server.add_socket(sock)
        self._started.set()
        self.loop.run_forever()

    def run(self, coro_fn, timeout: float = 10.0):
        """Run ``coro_fn()`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro_fn(), self.loop).result(timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        key: str | None = KEY,
        timeout: float = 20.0,
    ) -> Reply:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers.setdefault("Authorization", f"Bearer {key}")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            data = response.read()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            connection.close()

    def stdout_text(self) -> str:
        self.runtime.flush()
        return self.stream.getvalue()

    def audit_text(self) -> str:
        self.runtime.flush()
        with open(self.settings.audit_log_path, encoding="utf-8") as handle:
            return handle.read()

    def drained(self, timeout: float = 5.0) -> bool:
        return self.run(lambda: wait_until(lambda: drained(self.ctx), timeout), timeout + 5)

    def stop(self) -> None:
        async def close():
            self.server.stop()
            await self.server.close_all_connections()

        try:
            self.run(close)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.runtime.stop()


def live_settings(tmp_dir, **overrides: Any) -> Settings:
    base = Settings(
        gitea_url="http://127.0.0.1:9",
        api_keys=(parse_key(KEY, name="primary"), parse_key(OTHER_KEY)),
        audit_log_path=str(tmp_dir / "audit.log"),
        log_level="info",
        sse_keepalive=0.5,
        shutdown_timeout=2.0,
        max_auth_failures=1_000_000,  # fuzzers send bad keys on purpose
    )
    return dataclasses.replace(base, **overrides)


def fuzz_registry():
    """The test tools, with ``slow`` kept quick: a fuzzer may pick any valid duration."""
    registry = demo_tools()
    slow = registry.get("slow")
    schema = json.loads(json.dumps(slow.input_schema))
    schema["properties"]["seconds"].update(maximum=0.05, default=0.01)
    registry._tools["slow"] = dataclasses.replace(slow, input_schema=schema)
    return registry


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """One server per fuzzing module; its invariants are checked when the module is done."""
    server = LiveServer(live_settings(tmp_path_factory.mktemp("live")), fuzz_registry())
    yield server
    try:
        assert server.drained(), "the server did not drain after fuzzing"
        problems = problems_in_logs(server.stdout_text(), server.audit_text())
        assert not problems, "\n".join(problems[:20])
    finally:
        server.stop()
