"""Gitea REST client: a bounded, retrying, read-only view of one Gitea's API (``/api/v1``).

Nothing here knows about MCP. Use :class:`GiteaClient` with an endpoint name from
:data:`ENDPOINTS`; failures are :class:`GiteaError` subclasses with messages a model can act on.
"""

from .client import GiteaClient, Page, TreePage
from .endpoints import ENDPOINTS, SHAPES, build_path
from .errors import (
    GiteaAuthError,
    GiteaBadRequest,
    GiteaBadResponse,
    GiteaEmptyRepository,
    GiteaError,
    GiteaNotFound,
    GiteaUnavailable,
)
from .limits import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, MAX_TREE_PER_PAGE

__all__ = [
    "ENDPOINTS",
    "SHAPES",
    "DEFAULT_PAGE_LIMIT",
    "MAX_PAGE_LIMIT",
    "MAX_TREE_PER_PAGE",
    "build_path",
    "GiteaClient",
    "Page",
    "TreePage",
    "GiteaError",
    "GiteaNotFound",
    "GiteaAuthError",
    "GiteaEmptyRepository",
    "GiteaUnavailable",
    "GiteaBadResponse",
    "GiteaBadRequest",
]
