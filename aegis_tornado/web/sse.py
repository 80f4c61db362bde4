"""Server-sent events, written one way: ``write`` then ``await flush()`` per event.

A failed flush means the client went away; the stream then reports itself closed instead of
raising into the caller, so producers just stop.
"""

from __future__ import annotations

import asyncio

from tornado import iostream, web

from ..mcp.jsonrpc import encode


class EventStream:
    def __init__(self, handler: web.RequestHandler):
        self._handler = handler
        self.closed = False
        self.ended = asyncio.Event()  # set to ask the stream's owner to finish it
        #: Set by ``end(drain=True)`` (shutdown): deliver what is owed before finishing.
        self.drain = False
        self.gone = asyncio.Event()  # the client went away
        self._lock = asyncio.Lock()  # events from concurrent producers never interleave

    def open(self) -> None:
        handler = self._handler
        handler.set_status(200)
        handler.set_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.set_header("Cache-Control", "no-cache, no-transform")
        handler.set_header("X-Accel-Buffering", "no")  # nginx: do not buffer the stream
        handler.set_header("Connection", "keep-alive")

    async def _write(self, chunk: str) -> bool:
        if self.closed:
            return False
        async with self._lock:
            data = chunk.encode("utf-8")
            ctx = self._handler.settings["aegis"]
            ctx.requests.queued_bytes += len(data)
            try:
                self._handler.write(data)
                flushed = asyncio.ensure_future(self._handler.flush())
                flushed.add_done_callback(lambda f: f.cancelled() or f.exception())
                # A client that stops reading gets HTTP_SEND_TIMEOUT, then is dropped: its
                # producers wait on this flush meanwhile, so nothing piles up behind it.
                done, _ = await asyncio.wait({flushed}, timeout=ctx.settings.http_send_timeout)
                if not done:
                    self._drop()
                    return False
                flushed.result()
                return True
            except iostream.StreamClosedError:
                self.mark_closed()
                return False
            finally:
                ctx.requests.queued_bytes -= len(data)

    def _drop(self) -> None:
        connection = self._handler.request.connection
        stream = getattr(connection, "stream", None)
        if stream is not None and not stream.closed():
            stream.close()
        self.mark_closed()

    async def send_event(self, data: str, event: str = "message") -> bool:
        # One data line per event: the JSON encoder never emits raw newlines.
        return await self._write(f"event: {event}\ndata: {data}\n\n")

    async def send(self, message: dict) -> None:
        """``Outbound`` for the protocol core: a JSON-RPC message as a ``message`` event."""
        await self.send_event(encode(message))

    async def keepalive(self) -> bool:
        return await self._write(": keepalive\n\n")

    def mark_closed(self) -> None:
        self.closed = True
        self.gone.set()
        self.ended.set()

    def end(self, drain: bool = False) -> None:
        """Ask the stream to finish: at once (session ended, evicted), or, with ``drain``
        (shutdown), once the replies it still owes are sent."""
        self.drain = self.drain or drain
        self.ended.set()

    async def wait_ended(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.ended.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False
