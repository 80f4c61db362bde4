"""Baseline (b): what a user would pick instead, the official MCP Python SDK (``mcp`` 2.3.0).

An ``MCPServer`` with one tool, ``get_file_contents``, that makes the same Gitea calls as the
product (repository, cached for 30 s, then contents) with ``httpx2.AsyncClient`` (the async HTTP client the SDK
itself depends on; keep-alive pool of 16), decodes the file and returns the same fields. Served
the way the SDK's docs show, ``mcp.run("streamable-http", ...)``: uvicorn, one process, the
SDK's default INFO logging (uvicorn's access log on, to stderr).

Stateless (``stateless_http=True``): hosted clients drop ``Mcp-Session-Id``, and the product
serves session-less POSTs too, so both are measured without a session. ``--reply json`` is
``json_response=True`` (plain JSON replies, like the product's default); ``--reply sse`` is the
SDK's default event-stream reply. No auth, no audit, no policy, no sanitising.
"""

from __future__ import annotations

import argparse
import base64
import time

import httpx2
from mcp.server.mcpserver import MCPServer


def build(gitea: str, token: str) -> MCPServer:
    mcp = MCPServer("bench-sdk-baseline")
    state: dict = {}

    def client() -> httpx2.AsyncClient:
        if "client" not in state:  # created in the server's event loop, on first use
            state["client"] = httpx2.AsyncClient(
                base_url=gitea.rstrip("/") + "/api/v1",
                headers={"Authorization": f"token {token}", "Accept": "application/json"},
                limits=httpx2.Limits(max_connections=16, max_keepalive_connections=16),
                timeout=10.0,
            )
        return state["client"]

    @mcp.tool()
    async def get_file_contents(owner: str, repo: str, path: str, ref: str | None = None) -> dict:
        """Read one file of a repository."""
        http = client()
        if not ref:  # the repository lookup cached for 30 s, as the product and (a) do
            cached = state.get((owner, repo))
            if cached is None or time.monotonic() - cached[0] > 30:
                info = (await http.get(f"/repos/{owner}/{repo}")).raise_for_status().json()
                cached = state[(owner, repo)] = (
                    time.monotonic(),
                    info.get("default_branch") or "main",
                )
            ref = cached[1]
        data = (
            (await http.get(f"/repos/{owner}/{repo}/contents/{path}", params={"ref": ref}))
            .raise_for_status()
            .json()
        )
        text = base64.b64decode(data["content"]).decode("utf-8", "replace")
        return {
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

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser(description="Baseline (b): the official MCP SDK server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gitea", required=True)
    parser.add_argument("--token", default="bench-token")
    parser.add_argument("--reply", choices=("json", "sse"), default="json")
    parser.add_argument(
        "--stateful",
        action="store_true",
        help="the SDK's default sessions (not used by run.py; manual comparison)",
    )
    args = parser.parse_args()
    build(args.gitea, args.token).run(
        "streamable-http",
        host="127.0.0.1",
        port=args.port,
        json_response=args.reply == "json",
        stateless_http=not args.stateful,
    )


if __name__ == "__main__":
    main()
