"""Python load for what wrk cannot do: the legacy HTTP+SSE transport, and idle event streams.

``legacy``: ``c`` clients, each with its own session as a real client has: one ``GET /mcp/sse``
stream (replies arrive there) and one keep-alive connection for its POSTs. Each client runs a
closed loop: POST a ``tools/call`` (answered 202), wait for its reply on the stream; latency is
from the POST to the reply event. A few lines of asyncio over raw sockets, no HTTP library, so the
loader stays far from saturation at these rates (its own CPU time is reported to prove it).

``idle``: open ``n`` event streams (``GET`` with ``Accept: text/event-stream``), wait until every
one has its 200 and headers, print ``{"ready": n}``, then hold them, reading and discarding
keep-alives, until stdin closes; then close them all.

    python bench/sse_clients.py legacy --port P --key K --concurrency 10 --duration 4
    python bench/sse_clients.py idle --port P --key K --path /mcp --count 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time

MARKER = "AEGIS_BENCH_MARKER_7f3a"


def _head(method: str, path: str, headers: dict, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return body
            body += chunk[:-2]
    return b""


class ChunkedEvents:
    """SSE events from a chunked response body."""

    def __init__(self, reader: asyncio.StreamReader):
        self.reader = reader
        self.buf = b""

    async def next(self) -> tuple[str, str]:
        while True:
            end = self.buf.find(b"\n\n")
            if end >= 0:
                block, self.buf = self.buf[:end].decode(), self.buf[end + 2 :]
                event, data = "message", []
                for line in block.split("\n"):
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
                if data:
                    return event, "\n".join(data)
                continue  # a comment (keep-alive)
            size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                raise EOFError("stream ended")
            self.buf += chunk[:-2]


class LegacyClient:
    def __init__(self, port: int, key: str, arguments: dict, tool: str):
        self.port, self.key, self.arguments, self.tool = port, key, arguments, tool
        self.pending: dict[int, asyncio.Future] = {}
        self.next_id = 0
        self.latencies: list[float] = []
        self.errors = 0
        self.calls = 0  # every tools/call sent, warm-up included

    async def open(self) -> None:
        auth = {"Authorization": f"Bearer {self.key}"}
        self.sr, self.sw = await asyncio.open_connection("127.0.0.1", self.port)
        self.sw.write(_head("GET", "/mcp/sse", {**auth, "Accept": "text/event-stream"}))
        status, _ = await _read_head(self.sr)
        if status != 200:
            raise RuntimeError(f"GET /mcp/sse answered {status}")
        self.events = ChunkedEvents(self.sr)
        event, endpoint = await self.events.next()
        assert event == "endpoint", event
        self.endpoint = endpoint
        self.pr, self.pw = await asyncio.open_connection("127.0.0.1", self.port)
        self.post_headers = {**auth, "Content-Type": "application/json"}
        self.reader_task = asyncio.ensure_future(self._read_stream())
        await self.call(
            "initialize",
            {
                "protocolVersion": "2024-11-05",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        )
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def _read_stream(self) -> None:
        try:
            while True:
                _, data = await self.events.next()
                message = json.loads(data)
                future = self.pending.pop(message.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(message)
        except (EOFError, asyncio.IncompleteReadError, ConnectionError):
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(EOFError("stream closed"))

    async def _post(self, message: dict) -> None:
        self.pw.write(_head("POST", self.endpoint, self.post_headers, json.dumps(message).encode()))
        status, headers = await _read_head(self.pr)
        await _read_body(self.pr, headers)
        if status != 202:
            raise RuntimeError(f"POST answered {status}")

    async def call(self, method: str, params: dict) -> dict:
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self._post({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return await future

    async def loop(self, until: float, record_from: float) -> None:
        params = {"name": self.tool, "arguments": self.arguments}
        while True:
            start = time.monotonic()
            if start >= until:
                return
            self.calls += 1
            try:
                reply = await self.call("tools/call", params)
                ok = (
                    "result" in reply
                    and not reply["result"].get("isError")
                    and MARKER in json.dumps(reply["result"])
                )
            except Exception:  # noqa: BLE001 - counted
                ok = False
            end = time.monotonic()
            if start >= record_from and end <= until:
                self.latencies.append(end - start)
                if not ok:
                    self.errors += 1

    def close(self) -> None:
        self.reader_task.cancel()
        self.sw.close()
        self.pw.close()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


async def run_legacy(args) -> dict:
    arguments = json.loads(args.arguments)
    clients = [
        LegacyClient(args.port, args.key, arguments, args.tool) for _ in range(args.concurrency)
    ]
    await asyncio.gather(*(c.open() for c in clients))
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    record_from = start + args.warmup
    until = record_from + args.duration
    await asyncio.gather(*(c.loop(until, record_from) for c in clients))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for c in clients:
        c.close()
    latencies = [x for c in clients for x in c.latencies]
    errors = sum(c.errors for c in clients)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {
        "requests": len(latencies),
        "duration_us": int(args.duration * 1e6),
        "bad_status": errors,
        "no_marker": 0,
        "errors_connect": 0,
        "errors_read": 0,
        "errors_write": 0,
        "errors_timeout": 0,
        "errors_status": 0,
        "p50_us": int(_pct(latencies, 50) * 1e6),
        "p90_us": int(_pct(latencies, 90) * 1e6),
        "p99_us": int(_pct(latencies, 99) * 1e6),
        "p999_us": int(_pct(latencies, 99.9) * 1e6),
        "lat_mean_us": (statistics.fmean(latencies) * 1e6) if latencies else 0.0,
        "lat_max_us": int(max(latencies, default=0) * 1e6),
        "loader_cpu_pct": round(100 * cpu / (args.duration + args.warmup), 1),
        "calls_sent": sum(c.calls for c in clients),
    }


async def run_idle(args) -> None:
    headers = {"Accept": "text/event-stream"}
    if args.key:
        headers["Authorization"] = f"Bearer {args.key}"
    request = _head("GET", args.path, headers)
    sem = asyncio.Semaphore(64)  # open them briskly, not all in one burst

    async def one():
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
            writer.write(request)
            status, _ = await _read_head(reader)
            if status != 200:
                raise RuntimeError(f"GET {args.path} answered {status}")
            return reader, writer

    conns = await asyncio.gather(*(one() for _ in range(args.count)))

    async def drain(reader):
        try:
            while await reader.read(65536):
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass

    drains = [asyncio.ensure_future(drain(r)) for r, _ in conns]
    print(json.dumps({"ready": len(conns)}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the orchestrator closes stdin
    for _, writer in conns:
        writer.close()
    for task in drains:
        task.cancel()
    print(json.dumps({"closed": len(conns)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    legacy = sub.add_parser("legacy")
    legacy.add_argument("--port", type=int, required=True)
    legacy.add_argument("--key", required=True)
    legacy.add_argument("--concurrency", type=int, default=10)
    legacy.add_argument("--duration", type=float, default=4.0)
    legacy.add_argument("--warmup", type=float, default=0.5)
    legacy.add_argument("--tool", default="get_file_contents")
    legacy.add_argument("--arguments", required=True)
    legacy.add_argument("--out")
    idle = sub.add_parser("idle")
    idle.add_argument("--port", type=int, required=True)
    idle.add_argument("--key")
    idle.add_argument("--path", default="/mcp")
    idle.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    if args.mode == "legacy":
        result = asyncio.run(run_legacy(args))
        text = json.dumps(result)
        if args.out:
            with open(args.out, "w") as fh:
                fh.write(text)
        else:
            print(text)
    else:
        asyncio.run(run_idle(args))


if __name__ == "__main__":
    main()
