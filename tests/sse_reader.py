"""A small SSE client over a raw socket, for transport tests that must control the connection
(read events as they come, then drop the connection mid-stream)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit


class SseReader:
    def __init__(self) -> None:
        self.events: asyncio.Queue = asyncio.Queue()
        self.comments = 0
        self.code: int | None = None
        self.headers: dict[str, str] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        headers: dict[str, str] | None = None,
        method: str = "GET",
        body: str | bytes = b"",
        wait: bool = True,
    ) -> SseReader:
        """Send the request; with ``wait`` (the default), return once the headers arrived."""
        self = cls()
        parts = urlsplit(url)
        self._reader, self._writer = await asyncio.open_connection(parts.hostname, parts.port)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        body = body.encode() if isinstance(body, str) else body
        lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self._writer.drain()
        self._headers_read = asyncio.Event()
        self._task = asyncio.ensure_future(self._read_response())
        if wait:
            await asyncio.wait_for(self._headers_read.wait(), 10)
        return self

    async def _read_response(self) -> None:
        try:
            status = await self._reader.readline()
            self.code = int(status.split()[1])
            while (line := await self._reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                self.headers[name.strip().lower()] = value.strip()
        except (ConnectionError, IndexError, ValueError):
            self.events.put_nowait(("<closed>", ""))
            return
        finally:
            self._headers_read.set()
        await self._read_body()

    async def _read_body(self) -> None:
        buffer = ""
        chunked = self.headers.get("transfer-encoding") == "chunked"
        try:
            while True:
                if chunked:
                    size = int((await self._reader.readline()).strip() or b"0", 16)
                    if size == 0:
                        break
                    data = await self._reader.readexactly(size)
                    await self._reader.readexactly(2)
                else:
                    data = await self._reader.read(65536)
                    if not data:
                        break
                buffer += data.decode()
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    self._dispatch(block)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        self.events.put_nowait(("<closed>", ""))

    def _dispatch(self, block: str) -> None:
        event, data = "message", []
        for line in block.split("\n"):
            if line.startswith(":"):
                self.comments += 1
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            self.events.put_nowait((event, "\n".join(data)))

    async def next(self, timeout: float = 5) -> tuple[str, str]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def next_json(self, timeout: float = 5):
        event, data = await self.next(timeout)
        assert event == "message", (event, data)
        return json.loads(data)

    async def closed(self, timeout: float = 5) -> bool:
        """True when the server ended the stream (after any remaining events)."""
        while True:
            event, _ = await self.next(timeout)
            if event == "<closed>":
                return True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
