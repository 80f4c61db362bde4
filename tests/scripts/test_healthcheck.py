"""scripts/healthcheck.py: exit 0 only for a 200 from /health on 127.0.0.1:$MCP_PORT."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FakeServer(BaseHTTPRequestHandler):
    status = 200  # per-server override via a subclass
    seen: list

    def do_GET(self):  # noqa: N802 - http.server naming
        self.seen.append(self.path)
        status = self.status if self.path == "/health" else 404
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(status)
        if status in (301, 302):
            self.send_header("Location", "/health")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    servers = []

    def start(status: int) -> tuple[int, list]:
        seen: list = []
        handler = type("Handler", (FakeServer,), {"status": status, "seen": seen})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
        return server.server_address[1], seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def probe(run_py, make_env, port, **extra):
    return run_py("healthcheck.py", env=make_env(MCP_PORT=str(port), **extra), timeout=15)


def test_200_is_healthy(run_py, make_env, serve):
    port, seen = serve(200)
    result = probe(run_py, make_env, port)
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen == ["/health"]
    assert "healthy" in result.stdout


@pytest.mark.parametrize("status", [500, 503, 401, 302])
def test_other_status_is_unhealthy(run_py, make_env, serve, status):
    port, seen = serve(status)
    result = probe(run_py, make_env, port)
    assert result.returncode == 1
    assert str(status) in result.stdout
    assert seen == ["/health"]  # a redirect is not followed


def test_nothing_listening_is_unhealthy(run_py, make_env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = probe(run_py, make_env, port)
    assert result.returncode == 1
    assert "unhealthy" in result.stdout


def test_hanging_server_times_out(run_py, make_env):
    with socket.socket() as sock:  # accepts connections (backlog) but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        started = time.monotonic()
        result = probe(run_py, make_env, sock.getsockname()[1], HEALTHCHECK_TIMEOUT="0.5")
        assert result.returncode == 1
        assert time.monotonic() - started < 10


def test_proxy_settings_are_ignored(run_py, make_env, serve):
    port, _ = serve(200)
    result = probe(
        run_py, make_env, port, http_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9"
    )
    assert result.returncode == 0


@pytest.mark.parametrize("port", ["", "notaport", "70000"])
def test_default_and_invalid_port(run_py, make_env, port):
    if port == "":
        # Unset MCP_PORT means 8080; whatever is (not) there, the probe must answer 0 or 1 quickly.
        result = run_py("healthcheck.py", env=make_env(HEALTHCHECK_TIMEOUT="0.5"), timeout=15)
        assert result.returncode in (0, 1)
        assert ":8080/health" in result.stdout
    else:
        result = probe(run_py, make_env, port)
        assert result.returncode == 1
        assert "not a valid number" in result.stdout
