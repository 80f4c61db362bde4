"""Typed failures of the Gitea client.

Each message is written for the reader at the far end (often a language model): it says what went
wrong and what to do about it. Messages name the API path (never the query string, never the host
or credentials); the upstream ``message`` is quoted only after it has been cleaned and shortened.
"""

from __future__ import annotations

__all__ = [
    "GiteaError",
    "GiteaNotFound",
    "GiteaAuthError",
    "GiteaEmptyRepository",
    "GiteaUnavailable",
    "GiteaBadResponse",
    "GiteaBadRequest",
]


class GiteaError(Exception):
    """Base class: ``status`` is the HTTP status when Gitea answered, else ``None``.

    ``path`` is the API path that was asked for (relative to ``/api/v1``, no query).
    """

    status: int | None
    path: str | None
    #: True when the same call may succeed later without any change (outage, overload).
    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.path = path

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, path={self.path!r}, message={self.message!r})"


class GiteaNotFound(GiteaError):
    """404: the object does not exist, or the server's Gitea account may not see it."""


class GiteaAuthError(GiteaError):
    """401 (token missing, invalid or expired) or 403 (token scope or permission missing)."""


class GiteaEmptyRepository(GiteaError):
    """409 from commit listings: the repository has no commits yet."""


class GiteaUnavailable(GiteaError):
    """Gitea could not be reached or answered 5xx/429 (after any retries)."""

    retryable = True


class GiteaBadResponse(GiteaError):
    """Gitea answered, but the body is malformed, truncated, too large or not the expected shape."""


class GiteaBadRequest(GiteaError):
    """400/422: Gitea rejected the parameters."""
