"""Repository metadata, kept briefly: most tools need a repository's default branch, and a
conversation reads the same repository many times in a row."""

from __future__ import annotations

import time
from typing import Any

from ..gitea.credentials import credential_identity

__all__ = ["REPO_CACHE_SECONDS", "RepositoryCache"]

REPO_CACHE_SECONDS = 30.0
REPO_CACHE_ENTRIES = 512


def cacheable(data: dict[str, Any]) -> bool:
    """Only an answer that looks like Gitea's is kept: a stray one (a proxy's page, a
    half-upgraded Gitea) must not outlive the moment Gitea answers properly again."""
    full_name, branch = data.get("full_name"), data.get("default_branch")
    return (
        isinstance(full_name, str)
        and full_name.count("/") == 1
        and isinstance(data.get("empty"), bool)
        and (branch is None or (isinstance(branch, str) and bool(branch)))
    )


class RepositoryCache:
    """``owner/repo`` (any case) → Gitea's repository object, for ``seconds``, kept per whose
    rights read it: one OAuth user's private repository is not another's."""

    def __init__(
        self, seconds: float = REPO_CACHE_SECONDS, entries: int = REPO_CACHE_ENTRIES
    ) -> None:
        self.seconds = seconds
        self.entries = entries
        self._data: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}

    def get(self, owner: str, repo: str) -> dict[str, Any] | None:
        cached = self._data.get((credential_identity(), owner.lower(), repo.lower()))
        if cached is None or time.monotonic() - cached[0] >= self.seconds:
            return None
        return cached[1]

    def put(self, owner: str, repo: str, data: dict[str, Any]) -> None:
        if not cacheable(data):
            return
        if len(self._data) >= self.entries:
            self._data.clear()  # simple and bounded: a full cache is rebuilt in one round
        self._data[(credential_identity(), owner.lower(), repo.lower())] = (time.monotonic(), data)

    def __len__(self) -> int:
        return len(self._data)
