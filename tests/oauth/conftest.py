"""OAuth through the running server: the Gitea double (with its OAuth2 provider) on its own
port, the product with OAuth on, and a headless "browser" that follows the redirects and
submits the consent, Gitea sign-in and Gitea grant forms, as a person would."""

from __future__ import annotations

import dataclasses
import os
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from pydantic import AnyUrl
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from aegis_tornado.assembly import build_context, build_oauth, gitea_tools
from aegis_tornado.auth.keys import KeyRing, parse_key
from aegis_tornado.gitea_double import make_double_app
from aegis_tornado.gitea_double.oauth2 import DEMO_PASSWORDS, OAuthApp
from aegis_tornado.settings import Settings

from ..conftest import KEY
from ..support import Gitea

BOT_TOKEN = "bot-token-for-oauth-tests-5d2c9e1f"
GITEA_CLIENT_ID = "0b7c5f9e-oauth-tests-client"
GITEA_CLIENT_SECRET = "gto_oauthtestssecret0000000000000000000000000000"
REDIRECT = "http://127.0.0.1:33418/callback"


@pytest.fixture
def gitea(io_loop):
    app = make_double_app(token=BOT_TOKEN, control=True)
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    yield Gitea(app=app, url=f"http://127.0.0.1:{port}")
    server.stop()


@pytest.fixture
def mcp_base(http_port) -> str:
    return f"http://127.0.0.1:{http_port}"


#: A Fernet key the Redis-backed runs share (STATE_URL needs one configured).
VAULT_KEY = "q0kXW1sQ2cC0mJ3b8k1lHcV7o9oR2yJ7Jx3m6l2mYbE="


def pytest_generate_tests(metafunc) -> None:
    """A module with ``BOTH_STORES = True`` runs each test using the OAuth state on both."""
    if getattr(metafunc.module, "BOTH_STORES", False) and "oauth_backend" in metafunc.fixturenames:
        metafunc.parametrize("oauth_backend", ["sqlite", "redis"], indirect=True)


@pytest.fixture
def oauth_backend(request) -> str:
    """Where the OAuth state lives: ``sqlite`` (the default) or ``redis`` (``BOTH_STORES``
    above; ``AEGIS_TEST_OAUTH_BACKEND=redis`` runs the whole suite against Redis)."""
    return getattr(request, "param", os.environ.get("AEGIS_TEST_OAUTH_BACKEND", "sqlite"))


@pytest.fixture
def aegis_settings(tmp_path, settings_overrides, gitea, mcp_base, oauth_backend, request):
    gitea.oauth.register_app(
        OAuthApp(
            GITEA_CLIENT_ID,
            GITEA_CLIENT_SECRET,
            (f"{mcp_base}/oauth/callback",),
            name="AegisGitea MCP",
        )
    )
    base = Settings(
        gitea_url=gitea.url,
        gitea_token=BOT_TOKEN,
        api_keys=(parse_key(KEY, name="primary"),),
        audit_log_path=str(tmp_path / "audit.log"),
        log_level="debug",
        sse_keepalive=0.2,
        shutdown_timeout=2.0,
        public_url=mcp_base,
        oauth_enabled=True,
        gitea_oauth_client_id=GITEA_CLIENT_ID,
        gitea_oauth_client_secret=GITEA_CLIENT_SECRET,
        oauth_state_path=str(tmp_path / "oauth.sqlite3"),
    )
    if oauth_backend == "redis":
        base = dataclasses.replace(
            base, state_url=request.getfixturevalue("redis_url"), oauth_encryption_key=VAULT_KEY
        )
    return dataclasses.replace(base, **settings_overrides)


@pytest.fixture
def registry(aegis_settings, gitea):
    client, tools = gitea_tools(aegis_settings, gitea.url, BOT_TOKEN)
    yield tools
    client.close()


@pytest.fixture
def ctx(aegis_settings, logs, registry, gitea, mcp_base, io_loop):
    context = build_context(aegis_settings, KeyRing(aegis_settings.api_keys), registry)
    context.oauth = build_oauth(
        aegis_settings,
        gitea.url,
        mcp_base,
        GITEA_CLIENT_ID,
        GITEA_CLIENT_SECRET,
        state=context.state,
    )
    yield context
    context.oauth.close()
    if context.state is not None:
        io_loop.run_sync(context.shared_calls.close)
        io_loop.run_sync(context.shared_streams.close)
        io_loop.run_sync(context.sse_relay.close)
        io_loop.run_sync(context.state.close)


# --- the headless browser -------------------------------------------------------------------


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}, "buttons": []})
        elif tag in ("input", "button") and self.forms and a.get("name"):
            if tag == "button":
                self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))
            else:
                self.forms[-1]["fields"][a["name"]] = a.get("value", "")


class Browser:
    """Follows redirects, fills each page's form, stops at the client's redirect URI."""

    def __init__(self, login: str = "alice", *, consent: str = "allow", gitea_grant: str = "true"):
        self.login = login
        self.consent = consent
        self.gitea_grant = gitea_grant
        self.http = httpx2.AsyncClient(follow_redirects=False, timeout=20)
        self.result: dict[str, str] | None = None
        self.pages: list[tuple[str, int]] = []
        self.last_response: httpx2.Response | None = None
        self.redirect_prefix = "http://127.0.0.1:33418/"

    async def aclose(self) -> None:
        await self.http.aclose()

    async def visit(self, url: str) -> None:
        response = await self.http.get(url)
        for _ in range(20):
            self.last_response = response
            self.pages.append((str(response.url), response.status_code))
            if response.is_redirect:
                target = urljoin(str(response.url), response.headers["location"])
                if target.startswith(self.redirect_prefix):
                    self.result = dict(parse_qsl(urlsplit(target).query))
                    return
                response = await self.http.get(target)
                continue
            if response.status_code != 200:
                return
            response = await self.submit(response)
            if response is None:
                return
        raise AssertionError("too many pages")

    async def submit(self, response: httpx2.Response) -> httpx2.Response | None:
        parser = _Forms()
        parser.feed(response.text)
        if not parser.forms:
            return None
        form = parser.forms[0]
        fields = dict(form["fields"])
        if "handle" in fields:  # our consent page
            fields["action"] = self.consent
        elif "user_name" in fields:  # Gitea sign-in
            fields.update(user_name=self.login, password=DEMO_PASSWORDS[self.login])
        elif "granted" in [b[0] for b in form["buttons"]]:  # Gitea's grant page
            fields["granted"] = self.gitea_grant
        target = urljoin(str(response.url), form["action"])
        return await self.http.post(target, data=fields)

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None and "code" in self.result, self.pages
        return AuthorizationCodeResult(
            code=self.result["code"], state=self.result.get("state"), iss=self.result.get("iss")
        )


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info) -> None:
        self.client_info = client_info


def sdk_provider(mcp_base: str, browser: Browser, storage: MemoryStorage | None = None):
    return OAuthClientProvider(
        server_url=f"{mcp_base}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="sdk-test",
            redirect_uris=[AnyUrl(REDIRECT)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage or MemoryStorage(),
        redirect_handler=browser.visit,
        callback_handler=browser.callback,
    )
