"""Opaque credentials: random, prefixed so that a bearer token is told from an API key (64 hex
characters) by its shape alone, and stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import secrets

ACCESS_PREFIX = "agm_at_"
REFRESH_PREFIX = "agm_rt_"
CODE_PREFIX = "agm_ac_"
CLIENT_PREFIX = "dcr_"


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """What the store keeps instead of a token, code, handle or state."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def is_oauth_access_token(value: str) -> bool:
    return value.startswith(ACCESS_PREFIX)
