"""Per-request Gitea credentials: whose token a Gitea call carries.

An OAuth caller's tool calls must reach Gitea with *that user's* token, never the bot's. The
request sets :data:`REQUEST_CREDENTIALS` once it has authenticated the caller; every Gitea call
made on its behalf (tasks inherit the context) then sends the user's token instead of the
client's configured one. Nothing else changes: the client still knows nothing of OAuth or MCP.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol


class CredentialSource(Protocol):
    #: Stable and non-secret (e.g. ``gitea-user:7``): keys per-user caches.
    identity: str

    async def token(self) -> str:
        """A currently valid token (refreshed if need be)."""

    async def rejected(self) -> None:
        """Gitea answered 401 to that token: the grant is gone."""


REQUEST_CREDENTIALS: ContextVar[CredentialSource | None] = ContextVar(
    "aegis_gitea_credentials", default=None
)


def credential_identity() -> str:
    """Whose rights the current Gitea calls use: "" for the server's own token."""
    source = REQUEST_CREDENTIALS.get()
    return source.identity if source is not None else ""
