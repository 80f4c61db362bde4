"""The Gitea tools: a read-only view of Gitea for AI models, with an access policy and output
safety. Tools know nothing of transports; the registry serves them to every transport."""

from __future__ import annotations

from ..mcp.registry import ToolRegistry
from . import actions, commits, compare, files, issues, labels, releases, repos, search, wiki
from .base import ToolEnv
from .notices import with_notices
from .output_schemas import with_output_schemas

TOOL_MODULES = (
    *(search, repos, files, commits, issues, releases),
    # The operators' read tools (issue 13): Actions, wiki, comparisons and CI status, labels.
    *(actions, wiki, compare, labels),
)


def build_registry(env: ToolEnv) -> ToolRegistry:
    registry = ToolRegistry()
    for module in TOOL_MODULES:
        for tool in module.tools(env):
            registry.add(tool)
    return with_output_schemas(with_notices(registry))


__all__ = ["ToolEnv", "build_registry"]
