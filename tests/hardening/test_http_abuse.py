"""HTTP-level abuse over raw connections: body limits, framing tricks, headers, slow clients.

Complements tests/web/test_auth.py (413 on one route, declared and chunked): here every route,
unauthenticated senders, request smuggling shapes, header injection and slowloris.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import time

import pytest

from ..conftest import KEY, body_json, with_settings
from .conftest import RawConnection, drained, request_bytes, wait_until
from .process import ServerProcess

LIMIT = 1_048_576  # the default MAX_BODY_BYTES the test settings keep

POST_ROUTES = ["/mcp", "/mcp/tool/call", "/mcp/sse?session_id=" + "0" * 32, "/nowhere"]


async def ping_works(api) -> None:
    response = await api.mcp({"jsonrpc": "2.0", "id": "alive", "method": "ping"})
    assert response.code == 200 and body_json(response)["id"] == "alive"


# --- bodies over the limit --------------------------------------------------------------


@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.gen_test
async def test_a_declared_oversized_body_gets_413_before_any_of_it_is_sent(api, port, path):
    async with RawConnection(port) as conn:
        await conn.send(
            request_bytes(
                "POST", path, {"Content-Type": "application/json", "Content-Length": str(LIMIT + 1)}
            )
        )
        status, headers, body = await conn.response()
        assert status == 413
        assert json.loads(body)["message"].startswith("Request body too large")
        assert await conn.closed_by_server()
    await ping_works(api)


@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.gen_test
async def test_a_chunked_body_growing_past_the_limit_gets_413(api, port, path):
    chunk = b"x" * 65536
    async with RawConnection(port) as conn:
        await conn.send(
            request_bytes(
                "POST", path, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
            )
        )
        for _ in range(LIMIT // len(chunk) + 1):
            await conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, _, body = await conn.response()
        if path == "/nowhere":  # refused from the headers, before any of the body
            assert status == 404
        else:
            assert status == 413 and b"Request body too large" in body
        assert await conn.closed_by_server()


@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.gen_test
async def test_a_sender_that_keeps_pushing_is_cut_off_at_the_limit(api, port, path):
    # The client never reads: the server stops reading at the limit and closes. (Whether the
    # client then sees the 413 or a reset is up to TCP; the server holds nothing either way.)
    chunk = b"x" * 65536
    sent = 0
    async with RawConnection(port) as conn:
        await conn.send(
            request_bytes(
                "POST", path, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
            )
        )
        while sent < 8 * LIMIT and await conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk)):
            sent += len(chunk)
            await asyncio.sleep(0.002)  # the server shares this loop: let it read
    assert sent < 8 * LIMIT, "the server kept reading past the limit"


@pytest.mark.parametrize("key", [None, "f" * 64])
@pytest.mark.gen_test
async def test_an_unauthenticated_big_body_is_refused_without_being_read(api, port, key):
    # 10 MiB declared, none sent: the refusal comes from the headers, and the connection is
    # closed rather than drained.
    async with RawConnection(port) as conn:
        await conn.send(
            request_bytes(
                "POST",
                "/mcp/tool/call",
                {"Content-Type": "application/json", "Content-Length": str(10 * LIMIT)},
                key=key,
            )
        )
        status, _, _ = await conn.response()
        assert status == 401
        assert await conn.closed_by_server(timeout=3)


@pytest.mark.gen_test
async def test_an_unauthenticated_chunked_flood_is_cut_off(api, port):
    async with RawConnection(port) as conn:
        await conn.send(
            request_bytes(
                "POST",
                "/mcp",
                {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                key=None,
            )
        )
        status, _, _ = await conn.response()
        assert status == 401
        chunk = b"x" * 65536
        sent = 0
        while sent < 8 * LIMIT and await conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk)):
            sent += len(chunk)
            await asyncio.sleep(0.002)
        assert sent < 8 * LIMIT, "the server kept reading an unauthenticated body"


# --- framing tricks (request smuggling shapes) --------------------------------------------

SMUGGLING = {
    "cl-and-te": {"Content-Length": "4", "Transfer-Encoding": "chunked"},
    "two-lengths": {"Content-Length": "4, 60"},
    "negative-length": {"Content-Length": "-1"},
    "signed-length": {"Content-Length": "+4"},
    "hex-length": {"Content-Length": "0x4"},
    "te-not-chunked": {"Transfer-Encoding": "gzip"},
    "te-list": {"Transfer-Encoding": "chunked, identity"},
    "cl-and-te-obfuscated": {"Content-Length": "4", "Transfer-Encoding": " chunked\t"},
    "te-unknown": {"Transfer-Encoding": "xchunked"},
}
SMUGGLED = (
    b"GET /mcp/tools HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n\r\n"
)


@pytest.mark.parametrize("name", sorted(SMUGGLING))
@pytest.mark.gen_test
async def test_ambiguous_framing_is_refused_and_nothing_is_smuggled(api, port, name):
    body = b"0\r\n\r\n" + SMUGGLED
    async with RawConnection(port) as conn:
        await conn.send(
            request_bytes(
                "POST", "/mcp/tool/call", {"Content-Type": "application/json", **SMUGGLING[name]}
            )
            + body
        )
        status, _, _ = await conn.response()
        assert status in (None, 400, 401, 413), status
        # Nothing after the refusal is read as a second request.
        follow = await conn.response(timeout=2)
        assert follow[0] is None, follow
    await ping_works(api)


@pytest.mark.parametrize(
    "chunk",
    [b"zz\r\nxx\r\n", b"-1\r\n", b"1" * 80 + b"\r\n", b"5;ext=" + b"e" * 5000 + b"\r\nhello\r\n"],
)
@pytest.mark.gen_test
async def test_malformed_chunks_close_the_connection(api, port, chunk):
    async with RawConnection(port) as conn:
        await conn.send(
            request_bytes(
                "POST",
                "/mcp/tool/call",
                {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            )
            + chunk
            + b"0\r\n\r\n"
        )
        status, _, _ = await conn.response()
        assert status in (None, 400)
        assert await conn.closed_by_server()
    await ping_works(api)


# --- headers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_header",
    [
        b"X-Request-Id: abc\rSet-Cookie: injected=1",  # bare CR
        b"X-Request-Id: abc\x00def",  # NUL
        b"X-Request-Id: abc\n Set-Cookie: injected=1",  # obs-fold continuation
        b"Authorization: Bearer " + KEY.encode() + b"\rX: y",
        b"Bad Header Name: x",
        b"X-Request-Id:" + b"a" * 70_000,  # over the header size limit
    ],
)
@pytest.mark.gen_test
async def test_header_injection_attempts_get_400_and_inject_nothing(api, port, raw_header):
    async with RawConnection(port) as conn:
        await conn.send(
            b"GET /mcp/tools HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + KEY.encode()
            + b"\r\n"
            + raw_header
            + b"\r\n\r\n"
        )
        status, headers, _ = await conn.response()
        assert status in (None, 400, 431), status
        assert "set-cookie" not in headers
    await ping_works(api)


@pytest.mark.gen_test
async def test_the_request_id_is_echoed_only_when_harmless(api):
    safe = "req-42.a_B"
    assert (await api.request("/mcp/tools", headers={"X-Request-Id": safe})).headers[
        "X-Request-Id"
    ] == safe
    for hostile in ("a" * 65, "<script>", "a b", "id;x=1", "\u00e9t\u00e9", "a\tb"):
        echoed = (await api.request("/mcp/tools", headers={"X-Request-Id": hostile})).headers[
            "X-Request-Id"
        ]
        assert echoed != hostile and len(echoed) == 32 and echoed.isalnum()


@pytest.mark.gen_test
async def test_an_encoded_crlf_in_the_path_stays_in_the_path(api, port):
    async with RawConnection(port) as conn:
        await conn.send(request_bytes("GET", "/x%0d%0aSet-Cookie:%20injected=1"))
        status, headers, body = await conn.response()
    assert status == 404 and "set-cookie" not in headers
    assert json.loads(body)["message"].startswith("No such endpoint")


@pytest.mark.parametrize(
    "method, path",
    [
        (method, path)
        for method in ("PUT", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "HEAD")
        for path in ("/mcp", "/mcp/sse", "/mcp/tools", "/mcp/tool/call", "/health")
        if (method, path) != ("HEAD", "/health")  # the container's health check
    ],
)
@pytest.mark.gen_test
async def test_unexpected_methods_get_a_json_405(api, method, path):
    response = await api.request(path, method, body=b"{}" if method in ("PUT", "PATCH") else None)
    assert response.code == 405, (method, path, response.code)
    if method != "HEAD":
        assert body_json(response)["status"] == 405


@pytest.mark.gen_test
async def test_pipelined_requests_are_answered_in_order(api, port):
    async with RawConnection(port) as conn:
        burst = b"".join(
            request_bytes("GET", "/mcp/tools", {"X-Request-Id": f"p{n}"}) for n in range(50)
        )
        await conn.send(burst)
        for n in range(50):
            status, headers, _ = await conn.response()
            assert status == 200 and headers["x-request-id"] == f"p{n}"


# --- slow clients -----------------------------------------------------------------------


@with_settings(http_idle_timeout=0.5, http_body_timeout=0.5)
@pytest.mark.gen_test(timeout=20)
async def test_a_client_trickling_its_headers_is_cut_off(api, port):
    started = time.monotonic()
    async with RawConnection(port) as conn:
        request = request_bytes("GET", "/mcp/tools")
        for byte in request[:-4]:
            if not await conn.send(bytes([byte])):
                break
            await asyncio.sleep(0.05)
            if time.monotonic() - started > 5:
                break
        assert await conn.closed_by_server(timeout=3)
    assert time.monotonic() - started < 5
    # Meanwhile, others were served.
    await ping_works(api)


@with_settings(http_idle_timeout=0.5, http_body_timeout=0.5)
@pytest.mark.gen_test(timeout=20)
async def test_a_client_trickling_its_body_is_cut_off_and_its_request_freed(api, port, ctx):
    async with RawConnection(port) as conn:
        await conn.send(
            request_bytes(
                "POST",
                "/mcp/tool/call",
                {"Content-Type": "application/json", "Content-Length": "1000"},
            )
        )
        assert await wait_until(lambda: ctx.requests.in_flight == 1)
        other = asyncio.ensure_future(ping_works(api))  # served while this one trickles
        started = time.monotonic()
        while time.monotonic() - started < 5 and await conn.send(b" "):
            await asyncio.sleep(0.1)
        assert await conn.closed_by_server(timeout=3)
        assert time.monotonic() - started < 3
        await other
    assert await wait_until(lambda: drained(ctx))


@with_settings(http_idle_timeout=0.5)
@pytest.mark.gen_test(timeout=20)
async def test_idle_keep_alive_connections_are_closed(api, port):
    async with RawConnection(port) as conn:
        await conn.send(request_bytes("GET", "/mcp/tools"))
        assert (await conn.response())[0] == 200
        assert await conn.closed_by_server(timeout=3)


@with_settings(http_idle_timeout=0.5, sse_keepalive=0.1)
@pytest.mark.gen_test(timeout=20)
async def test_open_event_streams_are_not_idle_connections(api, port):
    # The idle timeout applies between requests, not to a stream the server is writing.
    async with RawConnection(port) as conn:
        await conn.send(request_bytes("GET", "/mcp", {"Accept": "text/event-stream"}))
        assert await conn.still_open_after(1.5)


@with_settings(http_header_timeout=0.5, http_idle_timeout=60)
@pytest.mark.gen_test(timeout=20)
async def test_a_new_connection_gets_the_short_header_timeout_a_kept_one_the_idle_one(api, port):
    started = time.monotonic()
    async with RawConnection(port) as stalled:
        await stalled.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        assert await stalled.closed_by_server(timeout=3)
    assert time.monotonic() - started < 3
    async with RawConnection(port) as kept:
        await kept.send(request_bytes("GET", "/mcp/tools"))
        assert (await kept.response())[0] == 200
        assert await kept.still_open_after(1.0)


@with_settings(max_connections_per_ip=3)
@pytest.mark.gen_test(timeout=20)
async def test_connections_beyond_the_per_address_cap_are_closed_at_once(api, port):
    held = [await RawConnection(port).__aenter__() for _ in range(3)]
    try:
        for conn in held:
            assert await conn.still_open_after(0.05)
        async with RawConnection(port) as extra:
            assert await extra.closed_by_server(timeout=1)
    finally:
        for conn in held:
            await conn.__aexit__(None, None, None)
    await asyncio.sleep(0.2)
    await ping_works(api)  # the slots are given back


# --- connection exhaustion (the process, at systemd's default `ulimit -n 1024`) ----------


def _nofile_1024() -> None:
    # Soft and hard: the server cannot raise it, as under systemd's LimitNOFILE=1024.
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def _half_open(port: int, count: int, source: str = "127.0.0.1") -> list[socket.socket]:
    """Up to ``count`` connections that each send part of a request's headers and stall.

    One after the other, so that they reach the server at once rather than through SYN
    retries; a connection the server closed or never accepted is still attempted (and kept)."""
    held = []
    stuck = 0
    for _ in range(count):
        sock = socket.socket()
        held.append(sock)
        sock.bind((source, 0))
        sock.settimeout(0.3)
        try:
            sock.connect(("127.0.0.1", port))
            sock.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Stall: ")
            stuck = 0
        except OSError:
            stuck += 1  # the backlog is full: the server is not accepting
            if stuck >= 3:
                break
    return held


def _health_from(port: int, source: str, timeout: float) -> float:
    """Seconds a fresh client at ``source`` waited for a 200 from /health."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout, (source, 0)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = sock.recv(64)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    return time.monotonic() - started


def _log_bytes(server: ServerProcess) -> int:
    written = sum(len(line) for line in server.lines) + len(server.stderr_so_far())
    return written + os.path.getsize(server.audit_path)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_half_open_connections_from_one_address_do_not_lock_out_another(tmp_path):
    # The red-team's figures: at ulimit -n 1024, 1,100 half-sent request headers from one
    # address made /health time out for everyone and wrote 87 MB of EMFILE tracebacks.
    server = ServerProcess(tmp_path, preexec_fn=_nofile_1024)
    held: list[socket.socket] = []
    try:
        before = _log_bytes(server)
        held = _half_open(server.port, 1100)
        time.sleep(0.5)
        assert _health_from(server.port, "127.0.0.2", timeout=5) < 1.0
        time.sleep(1)
        assert _health_from(server.port, "127.0.0.3", timeout=5) < 1.0
        assert _log_bytes(server) - before < 1_000_000
        assert server.proc.poll() is None
    finally:
        for sock in held:
            sock.close()
        server.kill()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_running_out_of_descriptors_neither_spins_nor_floods_the_log(tmp_path):
    # Caps set past the descriptor limit, so accept() does hit EMFILE: the listener rests
    # instead of spinning, one line says so, and the header timeout frees the server.
    server = ServerProcess(
        tmp_path,
        preexec_fn=_nofile_1024,
        MAX_CONNECTIONS="100000",
        MAX_CONNECTIONS_PER_IP="100000",
        HTTP_HEADER_TIMEOUT="3",
    )
    held: list[socket.socket] = []
    try:
        before = _log_bytes(server)
        held = _half_open(server.port, 1100)
        time.sleep(0.5)
        cpu_before = _cpu_seconds(server.proc.pid)
        time.sleep(2)
        assert _cpu_seconds(server.proc.pid) - cpu_before < 1.0  # not a busy loop
        failed = [r for r in server.records() if r.get("event") == "accept_failed"]
        assert failed and failed[0]["error"] == "EMFILE"
        assert len(failed) <= 2
        time.sleep(1.5)  # the header timeout closes the stalled connections
        assert _health_from(server.port, "127.0.0.2", timeout=5) < 1.0
        assert _log_bytes(server) - before < 1_000_000
        assert "Traceback" not in server.stderr_so_far()
    finally:
        for sock in held:
            sock.close()
        server.kill()
