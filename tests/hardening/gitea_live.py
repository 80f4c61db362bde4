"""The real server with the real Gitea tools, and the Gitea double behind them, on one thread.

For the property-based tests of the Gitea tools: ``GiteaLive`` is a :class:`LiveServer` whose
registry is the production one (``assembly.gitea_tools``) pointed at a Gitea double served on the
same event loop. The double records every request the server made (``requests_since``) and takes
faults (``add_fault``, ``clear_faults``) from the test thread.

``AEGIS_FUZZ_STATS=1`` prints, at the end of a module, how its tool calls ended (tool, status,
reason), to see what a fuzzer reached.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Any
from urllib.parse import unquote

from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from aegis_tornado.assembly import gitea_tools
from aegis_tornado.gitea_double import make_double_app

from .conftest import LiveServer, live_settings, problems_in_logs

GITEA_TOKEN = "bot-token-for-hardening-7f2a9c41d0"
_REPO_IN_PATH = re.compile(r"/api/v1/repos/([^/]+)/([^/?]+)")


class GiteaLive(LiveServer):
    def __init__(self, tmp_dir, **overrides: Any) -> None:
        overrides.setdefault("gitea_timeout", 2.0)
        overrides.setdefault("gitea_retries", 1)
        settings = live_settings(tmp_dir, gitea_token=GITEA_TOKEN, **overrides)
        sock, port = bind_unused_port()
        self.gitea_url = f"http://127.0.0.1:{port}"
        self.app = make_double_app(token=GITEA_TOKEN)
        self.client, registry = gitea_tools(
            settings, self.gitea_url, GITEA_TOKEN, public_url="https://git.example.com"
        )
        super().__init__(settings, registry)

        async def serve():
            self.double_server = HTTPServer(self.app)
            self.double_server.add_sockets([sock])

        self.run(serve)

    @property
    def double(self):
        return self.app.double

    # --- faults, from the test thread -----------------------------------------------------

    def add_fault(self, kind: str, **options: Any):
        async def add():
            return self.app.faults.add(kind, **options)

        return self.run(add)

    def clear_faults(self) -> None:
        async def clear():
            self.app.faults.clear()

        self.run(clear)

    # --- what Gitea heard -----------------------------------------------------------------

    def requests_since(self, mark: int) -> list:
        return list(self.double.requests[mark:])

    @staticmethod
    def repositories_named(records) -> set[tuple[str, str]]:
        """Every (owner, repo) named by these requests' paths, lower-case and decoded."""
        named = set()
        for record in records:
            match = _REPO_IN_PATH.match(record.path)
            if match and match.group(1) != "issues":  # /repos/issues/search names none
                named.add((unquote(match.group(1)).lower(), unquote(match.group(2)).lower()))
        return named

    # --- calls ----------------------------------------------------------------------------

    def call(self, tool: str, arguments: Any, transport: str = "rest") -> dict:
        """The CallToolResult of one call ({} when the body itself was refused as JSON)."""
        if transport == "rest":
            reply = self.request(
                "POST",
                "/mcp/tool/call",
                json.dumps({"tool": tool, "arguments": arguments}).encode(),
                headers={"Content-Type": "application/json"},
                timeout=60,
            )
            if reply.status == 400:
                assert "Request body is not valid JSON" in reply.json()["message"], reply.body
                return {}
            assert reply.status == 200, (reply.status, reply.body[:300])
            return reply.json()
        reply = self.request(
            "POST",
            "/mcp",
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments},
                }
            ).encode(),
            headers={"Content-Type": "application/json", "MCP-Protocol-Version": "2025-06-18"},
            timeout=60,
        )
        if reply.status == 400:
            assert reply.json()["error"]["code"] == -32700, reply.body
            return {}
        assert reply.status == 200, (reply.status, reply.body[:300])
        message = reply.json()
        assert "result" in message, message
        return message["result"]

    def last_tool_audit(self) -> dict:
        for line in reversed(self.audit_text().splitlines()):
            record = json.loads(line)
            if record.get("event") == "tool_call":
                return record
        raise AssertionError("no tool_call audit line")

    def check_and_stop(self) -> None:
        """The invariants every module of Gitea-tool tests ends with, then shut down."""
        if os.environ.get("AEGIS_FUZZ_STATS"):  # how the calls ended, to judge the coverage
            records = [json.loads(line) for line in self.audit_text().splitlines()]
            counts = Counter(
                (r["tool"], r["status"], r.get("reason"))
                for r in records
                if r.get("event") == "tool_call"
            )
            for outcome, count in sorted(counts.items(), key=str):
                print(*outcome, count)
        try:
            assert self.drained(), "the server did not drain"
            self.clear_faults()
            assert self.run(lambda: _settled(self.double), 15), (
                f"Gitea requests still open: {self.double.in_flight}"
            )
            problems = problems_in_logs(self.stdout_text(), self.audit_text())
            text = self.stdout_text() + self.audit_text()
            if GITEA_TOKEN in text:
                problems.append("the Gitea token appears in the logs")
            assert not problems, "\n".join(problems[:20])
        finally:

            async def close_double():
                self.double_server.stop()
                await self.double_server.close_all_connections()

            try:
                self.run(close_double)
            finally:
                self.client.close()
                self.stop()


async def _settled(double) -> bool:
    from .conftest import wait_until

    return await wait_until(lambda: double.in_flight == 0, 10)
