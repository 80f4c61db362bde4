"""Client ID Metadata Documents: a client whose ``client_id`` is an https URL (ChatGPT's way).

Fetching an attacker-chosen URL is an SSRF hazard (reference §5.6), so the fetch is narrow:

* the URL must be https, on a host of the operator's trust list (``OAUTH_CIMD_HOSTS``, default
  ``chatgpt.com``), with a path, and without credentials, port or fragment;
* the host is resolved here and every address must be public: private, loopback, link-local,
  reserved and multicast addresses are refused, and the connection goes to the checked address
  (the resolver is ours, so there is no second lookup to rebind);
* no redirects, 5 seconds, at most 16 KiB;
* the document must be a JSON object whose ``client_id`` is the URL itself, with non-empty
  ``redirect_uris`` and a public-client auth method; it is cached for 5 minutes.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import HTTPClientError
from tornado.netutil import DefaultLoopResolver, Resolver
from tornado.simple_httpclient import SimpleAsyncHTTPClient

MAX_DOCUMENT_BYTES = 16 * 1024
FETCH_TIMEOUT = 5.0
CACHE_SECONDS = 300.0

Fetcher = Callable[[str], Awaitable[bytes]]


class CimdError(Exception):
    """The document cannot be used; the message is safe to show on the error page."""


def is_cimd_client_id(client_id: str) -> bool:
    return client_id.startswith("https://")


def check_url(url: str, trusted_hosts: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CimdError("The client ID is not a valid URL") from None
    if parts.scheme != "https" or not parts.hostname or parts.path in ("", "/"):
        raise CimdError("A client ID URL must be https with a path")
    if parts.username or parts.password or parts.fragment or port not in (None, 443):
        raise CimdError("A client ID URL must not carry credentials, a port or a fragment")
    if parts.hostname.lower() not in trusted_hosts:
        raise CimdError("This server does not trust client ID documents from that host")


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


class PublicOnlyResolver(Resolver):
    """Resolves like the default resolver, then refuses any non-public address."""

    def initialize(self) -> None:
        self._inner = DefaultLoopResolver()

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        addresses = await self._inner.resolve(host, port, family)
        if not addresses or not all(is_public_address(addr[1][0]) for addr in addresses):
            raise CimdError("The client ID host resolves to a non-public address")
        return addresses


async def guarded_fetch(url: str) -> bytes:
    client = SimpleAsyncHTTPClient(
        force_instance=True, resolver=PublicOnlyResolver(), max_body_size=MAX_DOCUMENT_BYTES
    )
    try:
        response = await client.fetch(
            url,
            follow_redirects=False,
            connect_timeout=FETCH_TIMEOUT,
            request_timeout=FETCH_TIMEOUT,
            headers={"Accept": "application/json"},
        )
        return response.body
    except CimdError:
        raise
    except HTTPClientError as error:
        raise CimdError(
            f"The client ID document could not be fetched (HTTP {error.code})"
        ) from None
    except Exception:
        raise CimdError("The client ID document could not be fetched") from None
    finally:
        client.close()


def parse_document(url: str, body: bytes) -> dict[str, Any]:
    if len(body) > MAX_DOCUMENT_BYTES:
        raise CimdError("The client ID document is too large")
    try:
        doc = json.loads(body)
    except ValueError:
        raise CimdError("The client ID document is not JSON") from None
    if not isinstance(doc, dict) or doc.get("client_id") != url:
        raise CimdError("The client ID document does not name itself as the client ID")
    uris = doc.get("redirect_uris")
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise CimdError("The client ID document has no redirect URIs")
    methods = doc.get("token_endpoint_auth_methods_supported") or [
        doc.get("token_endpoint_auth_method", "none")
    ]
    if "none" not in methods:
        raise CimdError("The client must be able to use token_endpoint_auth_method 'none'")
    name = doc.get("client_name")
    return {
        "client_name": name[:200] if isinstance(name, str) and name else urlsplit(url).hostname,
        "redirect_uris": uris[:10],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }


class CimdClients:
    """Fetches, checks and caches documents; ``fetcher`` is replaceable (tests)."""

    def __init__(self, trusted_hosts: tuple[str, ...], fetcher: Fetcher = guarded_fetch) -> None:
        self.trusted_hosts = trusted_hosts
        self.fetcher = fetcher
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def load(self, url: str) -> dict[str, Any]:
        check_url(url, self.trusted_hosts)
        cached = self._cache.get(url)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        metadata = parse_document(url, await self.fetcher(url))
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[url] = (time.monotonic() + CACHE_SECONDS, metadata)
        return metadata
