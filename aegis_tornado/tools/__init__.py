"""MCP tools: the read-only operations an assistant may run against Gitea, and their guards."""
