"""Client ID Metadata Documents (ChatGPT's registration): the SDK's CIMD path end to end with
the document served by an injected fetcher, a ChatGPT-shaped request by raw HTTP, and the SSRF
guards (matrix case 15)."""

from __future__ import annotations

import json

import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl

from aegis_tornado.oauth.cimd import CimdError, PublicOnlyResolver, guarded_fetch

from .conftest import REDIRECT, Browser, MemoryStorage
from .test_endpoints import pkce

CLIENT_URL = "https://chatgpt.com/oauth/abc/client.json"
CHATGPT_REDIRECT = "https://chatgpt.com/connector/oauth/abc"


def serve(documents: dict[str, object], fetched: list[str]):
    async def fetch(url: str) -> bytes:
        fetched.append(url)
        document = documents[url]
        return document if isinstance(document, bytes) else json.dumps(document).encode()

    return fetch


def chatgpt_document(redirects: list[str], client_id: str = CLIENT_URL) -> dict:
    return {
        "client_id": client_id,
        "client_name": "ChatGPT",
        "redirect_uris": redirects,
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
    }


@pytest.mark.gen_test(timeout=60)
async def test_sdk_signs_in_with_a_client_id_metadata_document(mcp_base, ctx, app, http_server):
    fetched: list[str] = []
    ctx.oauth.cimd.fetcher = serve({CLIENT_URL: chatgpt_document([REDIRECT])}, fetched)
    browser = Browser("alice")
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=f"{mcp_base}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="ChatGPT",
            redirect_uris=[AnyUrl(REDIRECT)],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.visit,
        callback_handler=browser.callback,
        client_metadata_url=CLIENT_URL,
    )
    try:
        async with httpx2.AsyncClient(auth=provider, timeout=20) as http:
            async with streamable_http_client(f"{mcp_base}/mcp", http_client=http) as (r, w):
                async with ClientSession(r, w) as session:
                    await session.initialize()
                    result = await session.call_tool("list_repositories", {})
    finally:
        await browser.aclose()
    assert not result.is_error
    assert storage.client_info.client_id == CLIENT_URL  # no registration call
    assert fetched and set(fetched) == {CLIENT_URL}


@pytest.mark.gen_test(timeout=60)
async def test_chatgpt_shaped_authorization_and_ssrf_guards(mcp_base, ctx, app, http_server):
    fetched: list[str] = []
    ctx.oauth.cimd.fetcher = serve(
        {
            CLIENT_URL: chatgpt_document([CHATGPT_REDIRECT]),
            "https://chatgpt.com/oauth/liar/client.json": chatgpt_document(
                [CHATGPT_REDIRECT], client_id="https://chatgpt.com/oauth/other/client.json"
            ),
            "https://chatgpt.com/oauth/big/client.json": b"{" + b" " * 20000 + b"}",
            "https://chatgpt.com/oauth/wide/client.json": chatgpt_document(
                ["https://evil.example/cb"], client_id="https://chatgpt.com/oauth/wide/client.json"
            ),
        },
        fetched,
    )
    _, challenge = pkce()

    def url(client_id: str, redirect: str = CHATGPT_REDIRECT) -> str:
        from urllib.parse import urlencode

        return f"{mcp_base}/oauth/authorize?" + urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect,
                "state": "s",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "resource": f"{mcp_base}/mcp",
            }
        )

    async with httpx2.AsyncClient(timeout=20) as http:
        page = await http.get(url(CLIENT_URL))
        assert page.status_code == 200 and "ChatGPT" in page.text and "chatgpt.com" in page.text
        for client_id, redirect in (
            ("https://evil.example/oauth/client.json", CHATGPT_REDIRECT),  # untrusted host
            ("https://chatgpt.com/oauth/liar/client.json", CHATGPT_REDIRECT),  # client_id mismatch
            ("https://chatgpt.com/oauth/big/client.json", CHATGPT_REDIRECT),  # too large
            ("https://chatgpt.com/oauth/wide/client.json", "https://evil.example/cb"),  # policy
            ("http://chatgpt.com/oauth/abc/client.json", CHATGPT_REDIRECT),  # not https
            ("https://chatgpt.com:8443/oauth/abc/client.json", CHATGPT_REDIRECT),  # port
        ):
            refused = await http.get(url(client_id, redirect))
            assert refused.status_code == 400 and "location" not in refused.headers, client_id
    assert "https://evil.example/oauth/client.json" not in fetched


@pytest.mark.gen_test
async def test_the_fetcher_refuses_non_public_addresses():
    for host in ("127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fd00::1"):
        with pytest.raises(CimdError):
            await PublicOnlyResolver().resolve(host, 443)
    with pytest.raises(CimdError):
        await guarded_fetch("https://localhost/oauth/client.json")
