"""Redirect URIs: the registration trust policy and exact matching (RFC 8252 port freedom for
loopback IP literals only)."""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_IPS = ("127.0.0.1", "::1")
LOOPBACK_HOSTS = (*LOOPBACK_IPS, "localhost")


def _parts(uri: str):
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    return parts


def is_loopback(uri: str) -> bool:
    parts = _parts(uri)
    return bool(parts and parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)


def registrable(uri: str, trusted_prefixes: tuple[str, ...]) -> bool:
    """Whether a client may register ``uri``: a loopback http URI (native and local clients),
    or an https URI under an operator-trusted prefix (ChatGPT, Claude by default)."""
    parts = _parts(uri)
    if parts is None or parts.fragment or not parts.hostname or parts.username or parts.password:
        return False
    if is_loopback(uri):
        return True
    return parts.scheme == "https" and any(_under(uri, prefix) for prefix in trusted_prefixes)


def _under(uri: str, prefix: str) -> bool:
    if uri == prefix:
        return True
    if not uri.startswith(prefix):
        return False
    # "https://chatgpt.com/connector/oauth/" admits ".../oauth/abc", not ".../oauthx"; a prefix
    # without a trailing slash admits only itself or its sub-paths.
    return prefix.endswith("/") or uri[len(prefix)] in "/?"


def matches(registered: list[str], requested: str) -> bool:
    """Exact string match; for http loopback IP literals any port (RFC 8252 §7.3)."""
    if requested in registered:
        return True
    asked = _parts(requested)
    if asked is None or asked.scheme != "http" or asked.hostname not in LOOPBACK_IPS:
        return False
    for uri in registered:
        known = _parts(uri)
        if known is not None and (known.scheme, known.hostname, known.path, known.query) == (
            "http",
            asked.hostname,
            asked.path,
            asked.query,
        ):
            return True
    return False
