"""The Model Context Protocol core: JSON-RPC, versions, sessions and tools. Knows nothing of HTTP."""
