"""The Gitea tools through the running server, against the Gitea double on its own port."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from aegis_tornado.assembly import gitea_tools
from aegis_tornado.gitea_double import make_double_app

from ..gitea import spec
from ..support import Gitea

GITEA_TOKEN = "bot-token-for-tool-tests-3c9d1e7a"


@pytest.fixture
def gitea(io_loop):
    app = make_double_app(token=GITEA_TOKEN)
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    yield Gitea(app=app, url=f"http://127.0.0.1:{port}")
    app.faults.clear()
    server.stop()
    # Every call the tools made is a GET that Gitea 1.27's spec knows, token in the header only.
    for record in app.double.requests:
        assert record.method == "GET", record.path
        template = spec.match_template(record.api_path, record.method)
        assert template is not None, f"{record.path} is not in the Gitea 1.27 spec"
        assert {name for name, _ in record.query} <= spec.query_params(template), record.path
        assert record.auth != "query"


@pytest.fixture
def registry(aegis_settings, gitea):
    client, tools = gitea_tools(
        aegis_settings, gitea.url, GITEA_TOKEN, public_url="https://git.example.com"
    )
    yield tools
    client.close()


class ToolCaller:
    def __init__(self, api):
        self.api = api

    async def raw(self, tool: str, **arguments: Any) -> dict:
        response = await self.api.request(
            "/mcp/tool/call", "POST", json_body={"tool": tool, "arguments": arguments}
        )
        assert response.code == 200, response.body
        result = json.loads(response.body)
        if not result.get("isError"):
            assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
        return result

    async def __call__(self, tool: str, **arguments: Any) -> dict:
        """The structured result of a call that must succeed."""
        result = await self.raw(tool, **arguments)
        assert not result.get("isError"), result["content"][0]["text"]
        return result["structuredContent"]

    async def error(self, tool: str, **arguments: Any) -> str:
        """The message of a call that must fail with isError."""
        result = await self.raw(tool, **arguments)
        assert result.get("isError") is True, result
        return result["content"][0]["text"]


@pytest.fixture
def call(api) -> ToolCaller:
    return ToolCaller(api)
