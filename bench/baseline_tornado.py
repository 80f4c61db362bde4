"""Baseline (a): a bare Tornado proxy on the product's HTTP client stack.

Takes the same JSON-RPC ``tools/call`` POST (at ``/mcp``, and the REST shape at
``/mcp/tool/call``), makes the same upstream requests (``GET /repos/{owner}/{repo}`` then
``GET .../contents/{path}?ref=``; the repository lookup cached for 30 s, as the product does)
with ``requests_futures.FuturesSession`` configured as the product's ``GiteaClient`` configures
it (a 16-thread pool, a urllib3 pool of 16, no urllib3 retries, the environment's proxy settings
read once, awaited with ``asyncio.wrap_future``), decodes the file and answers the same
``CallToolResult`` fields. No auth, no audit, no MCP logic, no policy, no sanitising, no
per-request logging (Tornado's access log is off).

It mirrors the product's reply modes so every scenario has a baseline: a JSON reply by default,
an SSE reply (one progress event, then the result, each flushed) when the call carries
``_meta.progressToken`` and ``Accept`` includes ``text/event-stream``; ``tools/list`` answers a
constant list. ``GET /stream`` holds a bare SSE stream open (the per-stream memory baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from requests_futures.sessions import FuturesSession
from tornado import iostream, web
from tornado.httpserver import HTTPServer

POOL = 16
TOOLS = {
    "tools": [
        {
            "name": "get_file_contents",
            "description": "Read one file of a repository.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "owner": {"type": "string"},
                    "repo": {"type": "string"},
                    "path": {"type": "string"},
                    "ref": {"type": "string"},
                },
                "required": ["owner", "repo", "path"],
            },
        }
    ]
}


def make_session(token: str) -> FuturesSession:
    session = FuturesSession(
        executor=ThreadPoolExecutor(max_workers=POOL),
        adapter_kwargs={"pool_connections": POOL, "pool_maxsize": POOL, "max_retries": 0},
    )
    # Configured as the product's GiteaClient is: environment read once, not per request
    # (BENCH_TRUST_ENV=1 restores requests' default, to measure what it costs).
    session.trust_env = os.environ.get("BENCH_TRUST_ENV", "0") == "1"
    session.headers.update({"Authorization": f"token {token}", "Accept": "application/json"})
    return session


class Proxy:
    def __init__(self, gitea: str, token: str):
        self.api = gitea.rstrip("/") + "/api/v1"
        self.session = make_session(token)
        self.default_branches: dict[tuple[str, str], tuple[float, str]] = {}

    async def get(self, path: str, params=None):
        future = self.session.get(self.api + path, params=params, timeout=(10, 10))
        response = await asyncio.wrap_future(future)
        response.raise_for_status()
        return response.json()

    async def default_branch(self, owner: str, repo: str) -> str:
        """The same upstream requests as the product: it caches the repository lookup for
        30 s, so a run makes one contents request per call (plus one lookup per 30 s)."""
        now = time.monotonic()
        cached = self.default_branches.get((owner, repo))
        if cached is None or now - cached[0] > 30:
            info = await self.get(f"/repos/{owner}/{repo}")
            cached = (now, info.get("default_branch") or "main")
            self.default_branches[(owner, repo)] = cached
        return cached[1]

    async def get_file_contents(self, args: dict) -> dict:
        owner, repo, path = args["owner"], args["repo"], args["path"]
        ref = args.get("ref") or await self.default_branch(owner, repo)
        data = await self.get(f"/repos/{owner}/{repo}/contents/{path}", {"ref": ref})
        text = base64.b64decode(data["content"]).decode("utf-8", "replace")
        value = {
            "owner": owner,
            "repo": repo,
            "path": path,
            "ref": ref,
            "sha": data.get("sha"),
            "size": data.get("size"),
            "content": text,
            "truncated": False,
            "redactions": 0,
            "url": data.get("html_url"),
        }
        return {
            "content": [{"type": "text", "text": json.dumps(value)}],
            "structuredContent": value,
        }


class TornadoClientProxy(Proxy):
    """``--client tornado``: the same proxy on Tornado's own non-blocking HTTP client (no
    threads). Not the product's stack: measured only to show what the client choice costs."""

    def __init__(self, gitea: str, token: str):
        from tornado.httpclient import AsyncHTTPClient

        self.api = gitea.rstrip("/") + "/api/v1"
        self.headers = {"Authorization": f"token {token}", "Accept": "application/json"}
        self.client = AsyncHTTPClient(max_clients=POOL)

    async def get(self, path: str, params=None):
        from tornado.httputil import url_concat

        response = await self.client.fetch(
            url_concat(self.api + path, params or {}), headers=self.headers, request_timeout=10
        )
        return json.loads(response.body)


class McpHandler(web.RequestHandler):
    def initialize(self, proxy: Proxy) -> None:
        self.proxy = proxy

    async def post(self) -> None:
        message = json.loads(self.request.body)
        params = message.get("params") or {}
        if message.get("method") == "tools/list":
            return self._json({"jsonrpc": "2.0", "id": message.get("id"), "result": TOOLS})
        progress = (params.get("_meta") or {}).get("progressToken")
        if progress is not None and "text/event-stream" in self.request.headers.get("Accept", ""):
            self.set_header("Content-Type", "text/event-stream")
            self.set_header("Cache-Control", "no-cache")
            self._event(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {"progressToken": progress, "progress": 0},
                }
            )
            await self.flush()
            result = await self.proxy.get_file_contents(params.get("arguments") or {})
            self._event({"jsonrpc": "2.0", "id": message.get("id"), "result": result})
            self.finish()
            return
        result = await self.proxy.get_file_contents(params.get("arguments") or {})
        self._json({"jsonrpc": "2.0", "id": message.get("id"), "result": result})

    def _event(self, message: dict) -> None:
        self.write(f"event: message\ndata: {json.dumps(message)}\n\n")

    def _json(self, value: dict) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))


class RestHandler(McpHandler):
    async def post(self) -> None:
        request = json.loads(self.request.body)
        self._json(await self.proxy.get_file_contents(request.get("arguments") or {}))


class StreamHandler(web.RequestHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.write(": open\n\n")
        try:
            await self.flush()
            self._closed = asyncio.get_running_loop().create_future()
            await self._closed
        except iostream.StreamClosedError:
            pass

    def on_connection_close(self) -> None:
        closed = getattr(self, "_closed", None)
        if closed is not None and not closed.done():
            closed.set_result(None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Baseline (a): bare Tornado + requests-futures proxy"
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gitea", required=True)
    parser.add_argument("--token", default="bench-token")
    parser.add_argument(
        "--client", choices=("requests-futures", "tornado"), default="requests-futures"
    )
    args = parser.parse_args()
    logging.getLogger("tornado.access").disabled = True

    async def serve() -> None:
        proxy = (TornadoClientProxy if args.client == "tornado" else Proxy)(args.gitea, args.token)
        app = web.Application(
            [
                (r"/mcp/tool/call", RestHandler, {"proxy": proxy}),
                (r"/mcp", McpHandler, {"proxy": proxy}),
                (r"/stream", StreamHandler),
            ]
        )
        HTTPServer(app).listen(args.port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
