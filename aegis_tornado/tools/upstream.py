"""Gitea's failures as tool errors a model can act on.

The Gitea client raises typed :class:`~aegis_tornado.gitea.GiteaError` s and knows nothing of
MCP; this is where each becomes a :class:`~aegis_tornado.mcp.registry.ToolError` with an
audit reason.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from ..gitea import (
    GiteaAuthError,
    GiteaBadRequest,
    GiteaBadResponse,
    GiteaEmptyRepository,
    GiteaError,
    GiteaNotFound,
    GiteaUnavailable,
)
from ..gitea.credentials import credential_identity
from ..mcp.registry import ToolError

__all__ = ["NOT_FOUND", "gitea_call", "not_found"]

T = TypeVar("T")

#: The reason of the error :func:`gitea_call` raises for a 404.
NOT_FOUND = "not_found"


def not_found(what: str) -> str:
    """The words for anything missing, a denied repository included."""
    return f"{what} not found, or not visible to the server's Gitea account"


def as_tool_error(error: GiteaError, what: str) -> ToolError:
    """The tool error for a Gitea failure; ``what`` names the object asked for (404s)."""
    if isinstance(error, GiteaNotFound):
        return ToolError(not_found(what or "The requested object"), reason=NOT_FOUND)
    if isinstance(error, GiteaEmptyRepository):
        return ToolError(
            "The repository is empty: it has no commits, files or branches yet.",
            reason="empty_repository",
        )
    if isinstance(error, GiteaAuthError):
        if credential_identity():  # an OAuth caller: their own Gitea authorization failed
            return ToolError(
                "Gitea refused your Gitea authorization (revoked, expired, or without "
                "permission for this). If you revoked this application in Gitea, sign in again.",
                reason="gitea_auth",
            )
        return ToolError(
            "Gitea refused the server's own token (rejected, expired or missing a read "
            f"scope): {error.message} Tell the server's operator; retrying will not help.",
            reason="gitea_auth",
        )
    if isinstance(error, GiteaUnavailable):
        return ToolError(
            f"Gitea is unavailable right now ({error.message}). Try again in a minute.",
            reason="gitea_unavailable",
        )
    if isinstance(error, GiteaBadRequest):
        return ToolError(f"Gitea rejected the request: {error.message}", reason="gitea_bad_request")
    if isinstance(error, GiteaBadResponse):
        return ToolError(
            f"Gitea sent a response the server could not use: {error.message}",
            reason="gitea_bad_response",
        )
    return ToolError(f"Gitea call failed: {error.message}", reason="gitea_error")


async def gitea_call(call: Awaitable[T], what: str = "") -> T:
    """Await a Gitea call; its failure comes out as the matching :class:`ToolError`."""
    try:
        return await call
    except GiteaError as error:
        raise as_tool_error(error, what) from None
