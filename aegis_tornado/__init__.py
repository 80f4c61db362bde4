"""AegisGitea MCP: a Tornado server that exposes a read-only view of one Gitea as MCP tools."""

__version__ = "0.1.0"
