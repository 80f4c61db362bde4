"""Fixtures for the double's own tests: the app (control endpoint on) and a raw HTTP helper."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from aegis_tornado.gitea_double import DEMO_TOKEN, make_double_app

ALICE = "alice-secret-token"
CAROL = "carol-secret-token"
REPO_ONLY = "repo-only-token"


@pytest.fixture
def app():
    application = make_double_app(
        control=True,
        extra_tokens={
            ALICE: ("alice", {"read:repository", "read:issue", "read:user"}),
            CAROL: ("carol", {"all"}),
            REPO_ONLY: ("aegis-bot", {"read:repository"}),
        },
    )
    yield application
    application.faults.clear()


@pytest.fixture
def double(app):
    return app.double


class Api:
    """Raw requests to the double; ``token=None`` means anonymous."""

    def __init__(self, port: int) -> None:
        self.root = f"http://127.0.0.1:{port}"
        self.http = AsyncHTTPClient()

    async def get(
        self,
        path: str,
        token: str | None = DEMO_TOKEN,
        *,
        scheme: str = "token",
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> HTTPResponse:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"{scheme} {token}"
        payload = (
            None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
        )
        if payload is None and method in ("POST", "PUT", "PATCH"):
            payload = b""
        request = HTTPRequest(
            self.root + path,
            method=method,
            headers=all_headers,
            body=payload,
            allow_nonstandard_methods=True,
            follow_redirects=False,
            request_timeout=10,
        )
        return await self.http.fetch(request, raise_error=False)

    async def json(
        self, path: str, token: str | None = DEMO_TOKEN, expect: int = 200, **kw: Any
    ) -> Any:
        response = await self.get(path, token, **kw)
        assert response.code == expect, (response.code, response.body[:300])
        return json.loads(response.body) if response.body else None


@pytest.fixture
def api(http_server, http_port) -> Api:
    return Api(http_port)
