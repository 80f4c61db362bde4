"""Fixtures for the Gitea client tests: the double on a random port, and clients pointed at it.

Every test that uses the double (``app``) also checks, at teardown, that everything the client
sent was a GET that Gitea 1.27's spec knows (path template and query parameter names) and that
the token only ever travelled in the header.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aegis_tornado.gitea import GiteaClient
from aegis_tornado.gitea_double import make_double_app

from . import spec

TOKEN = "t0k3n-for-the-client-tests-5f0c9a"
ALICE_TOKEN = "alice-token-7d1e"
NO_ISSUE_SCOPE_TOKEN = "repo-only-token-42"


@pytest.fixture
def app():
    application = make_double_app(
        token=TOKEN,
        extra_tokens={
            ALICE_TOKEN: (
                "alice",
                {"read:repository", "read:issue", "read:user", "read:organization"},
            ),
            NO_ISSUE_SCOPE_TOKEN: ("aegis-bot", {"read:repository"}),
        },
    )
    yield application
    application.faults.clear()
    problems = []
    for record in application.double.requests:
        where = f"{record.method} {record.path}"
        if record.method != "GET":
            problems.append(f"{where}: the client must only ever send GET")
        template = spec.match_template(record.api_path, record.method)
        if template is None:
            problems.append(f"{where}: matches no path template of the Gitea 1.27 spec")
            continue
        unknown = {name for name, _ in record.query} - spec.query_params(template)
        if unknown:
            problems.append(
                f"{where}: query parameters {sorted(unknown)} are not in the spec for {template}"
            )
        if record.auth == "query":
            problems.append(f"{where}: credentials were sent in the query string")
    assert not problems, "\n".join(problems)


@pytest.fixture
def double(app):
    return app.double


@pytest.fixture
def gitea_url(http_server, http_port) -> str:
    return f"http://127.0.0.1:{http_port}"


@pytest.fixture
def make_client(gitea_url) -> Callable[..., GiteaClient]:
    clients: list[GiteaClient] = []

    def factory(
        token: str | None = TOKEN, *, base_url: str | None = None, **options: Any
    ) -> GiteaClient:
        options.setdefault("timeout", 2.0)
        options.setdefault("backoff_base", 0.02)
        options.setdefault("backoff_max", 0.05)
        client = GiteaClient(base_url or gitea_url, token, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client) -> GiteaClient:
    return make_client()
