"""Gitea's own limits on what one API call returns: declared once, here, for the client that
clamps to them and for the tools that tell the model about them. Stdlib only."""

from __future__ import annotations

__all__ = ["DEFAULT_PAGE_LIMIT", "MAX_PAGE_LIMIT", "MAX_TREE_PER_PAGE"]

#: Gitea's ``[api] MAX_RESPONSE_ITEMS`` default; larger ``limit`` values are silently clamped.
MAX_PAGE_LIMIT = 50
#: Gitea's ``[api] DEFAULT_PAGING_NUM``: the page size when none is asked for.
DEFAULT_PAGE_LIMIT = 30
#: Gitea's ``[api] DEFAULT_GIT_TREES_PER_PAGE`` default, the most a tree page can hold.
MAX_TREE_PER_PAGE = 1000
