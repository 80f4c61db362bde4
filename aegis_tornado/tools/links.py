"""Web links given to the model: Gitea's public web address, never its API address."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

__all__ = ["Links"]

_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")


class Links:
    """Gitea web URLs on ``public_url``; ``gitea_url`` is the address the server calls Gitea
    at (its URLs are moved onto the public one)."""

    def __init__(self, public_url: str, gitea_url: str) -> None:
        self.public_url = public_url.rstrip("/")
        self.gitea_url = gitea_url.rstrip("/")

    def web_url(self, *parts: Any) -> str:
        """A Gitea web URL from parts (each percent-encoded, '/' kept). Parts may come from
        Gitea's answers, so anything that is not a string is written as one."""
        return "/".join(
            [self.public_url, *(quote(str(p), safe="/") for p in parts if p not in (None, ""))]
        )

    def repo_url(self, owner: str, repo: str) -> str:
        return self.web_url(owner, repo)

    def src_url(self, owner: str, repo: str, ref: str, path: str = "") -> str:
        """The web page of a path at a ref. Gitea's URL names the kind of ref; a full SHA is a
        commit, anything else is taken for a branch (tags still resolve: Gitea redirects)."""
        kind = "commit" if _FULL_SHA.fullmatch(ref) else "branch"
        return self.web_url(owner, repo, "src", kind, ref, path)

    def link(self, gitea_url: Any, fallback: str) -> str:
        """A URL Gitea gave us, moved onto the public web address; else ``fallback``."""
        if isinstance(gitea_url, str) and gitea_url.startswith(self.gitea_url + "/"):
            return self.public_url + gitea_url[len(self.gitea_url) :]
        return fallback
