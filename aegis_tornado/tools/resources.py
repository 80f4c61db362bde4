"""Repository files as MCP resources, and completion of their URIs: how clients attach files.

One resource template, ``gitea://{owner}/{repo}/{+path}`` (append ``?ref=<branch, tag or sha>``
for another ref than the default branch). ``resources/read`` runs the ``get_file_contents`` tool
itself, so a read passes the same access policy, sanitiser and size caps, and is audited as that
tool call. ``completion/complete`` proposes owners, repositories, paths and refs the caller may
see, from the listing tools (which apply the same policy). An unknown or unreadable resource is
-32602 with ``data.uri``, never empty contents.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..mcp import versions
from ..mcp.arguments import ArgumentError, validate_arguments
from ..mcp.jsonrpc import INVALID_PARAMS, JsonRpcError, Message
from ..mcp.protocol import McpServer, ProtocolSession
from ..mcp.registry import ToolError, ToolRegistry

SCHEME = "gitea"
TEMPLATE = "gitea://{owner}/{repo}/{+path}"
#: A read result may be reused this long by the same caller (files change, policies change).
READ_TTL_MS = 60_000
LIST_TTL_MS = 300_000
#: The spec caps a completion at 100 values.
MAX_COMPLETIONS = 100

_TEMPLATE_ENTRY = {
    "uriTemplate": TEMPLATE,
    "name": "repository-file",
    "title": "Repository file",
    "description": (
        "A file in a Gitea repository, read at the default branch; append ?ref=<branch, tag "
        "or commit> for another. Sensitive files and blocked repositories are not readable."
    ),
    "mimeType": "text/plain",
}


class _Quiet:
    """The ToolContext of a call made on a client's behalf outside tools/call: the client
    asked for no progress and no log lines about it."""

    async def progress(self, message: str | None = None, total: float | None = None) -> None:
        return None

    async def log(self, level: str, data: Any) -> None:
        return None


def parse_uri(uri: str) -> dict[str, Any] | None:
    """``get_file_contents`` arguments for a ``gitea://`` URI, or None when it is not one."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme != SCHEME or not parts.netloc or parts.fragment:
        return None
    repo, _, path = parts.path.lstrip("/").partition("/")
    if not repo or not path:
        return None
    arguments: dict[str, Any] = {"owner": unquote(parts.netloc), "repo": unquote(repo)}
    arguments["path"] = unquote(path)
    refs = parse_qs(parts.query).get("ref")
    if refs:
        arguments["ref"] = refs[-1]
    return arguments


class RepositoryFiles:
    """The resources and completions methods, over the Gitea tools of ``registry``."""

    def __init__(self, server: McpServer, registry: ToolRegistry):
        self.server = server
        self.registry = registry

    @classmethod
    def install(cls, server: McpServer) -> RepositoryFiles | None:
        """Serve resources and completions when the server has the file tools."""
        if server.registry.get("get_file_contents") is None:
            return None
        files = cls(server, server.registry)
        server.add_methods(
            "resources",
            {
                "resources/list": files.list_resources,
                "resources/templates/list": files.list_templates,
                "resources/read": files.read,
            },
        )
        server.add_methods("completions", {"completion/complete": files.complete})
        return files

    # --- resources -------------------------------------------------------------------------

    async def list_resources(self, message: Message, session: ProtocolSession, *_: Any) -> dict:
        _no_cursor(message)
        # Files are reached through the template; there is no fixed list worth sending.
        return _cacheable({"resources": []}, session, LIST_TTL_MS, "public")

    async def list_templates(self, message: Message, session: ProtocolSession, *_: Any) -> dict:
        _no_cursor(message)
        return _cacheable(
            {"resourceTemplates": [dict(_TEMPLATE_ENTRY)]}, session, LIST_TTL_MS, "public"
        )

    async def read(
        self, message: Message, session: ProtocolSession, outbound: Any, observer: Any
    ) -> dict:
        uri = message.params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise JsonRpcError(INVALID_PARAMS, "Invalid params: uri must be a string")
        arguments = parse_uri(uri)
        if arguments is None:
            raise _not_found(uri, f"Resource not found: {uri[:200]} (expected {TEMPLATE})")
        result = await self.server.call_tool(
            "get_file_contents", arguments, session=session, outbound=outbound, observer=observer
        )
        if result.get("isError"):
            raise _not_found(uri, result["content"][0]["text"])
        file = result["structuredContent"]
        if file.get("binary"):
            text = file.get("note") or "Binary file: its content is not returned"
        else:
            text = file.get("text") or ""
            if file.get("truncated"):
                text += f"\n[{file.get('truncated_note') or 'truncated'}]"
        content = {"uri": uri, "mimeType": "text/plain", "text": text}
        # Repository content is never shared between callers by a cache.
        return _cacheable({"contents": [content]}, session, READ_TTL_MS, "private")

    # --- completions -----------------------------------------------------------------------

    async def complete(self, message: Message, session: ProtocolSession, *_: Any) -> dict:
        params = message.params
        ref = params.get("ref")
        argument = params.get("argument")
        if not isinstance(ref, dict) or not isinstance(argument, dict):
            raise JsonRpcError(INVALID_PARAMS, "Invalid params: ref and argument are required")
        if ref.get("type") != "ref/resource" or ref.get("uri") != TEMPLATE:
            raise JsonRpcError(
                INVALID_PARAMS, f"Invalid params: only the resource template {TEMPLATE} completes"
            )
        name, value = argument.get("name"), argument.get("value", "")
        if not isinstance(name, str) or not isinstance(value, str):
            raise JsonRpcError(
                INVALID_PARAMS, "Invalid params: argument name and value are strings"
            )
        context = params.get("context")
        known = context.get("arguments") if isinstance(context, dict) else None
        known = {k: v for k, v in (known or {}).items() if isinstance(v, str)}
        values = await self._candidates(name, value, known)
        matches = sorted({v for v in values if v.startswith(value)})
        return {
            "completion": {
                "values": matches[:MAX_COMPLETIONS],
                "total": len(matches),
                "hasMore": len(matches) > MAX_COMPLETIONS,
            }
        }

    async def _candidates(self, name: str, value: str, known: dict[str, str]) -> list[str]:
        owner, repo = known.get("owner"), known.get("repo")
        if name in ("owner", "repo"):
            query = value if name == "repo" and value else None
            listed = await self._run("list_repositories", {"limit": 50, "query": query})
            items = listed.get("items", []) if listed else []
            if name == "owner":
                return [i["owner"] for i in items]
            return [i["repo"] for i in items if owner is None or i["owner"] == owner]
        if owner is None or repo is None:
            return []
        target = {"owner": owner, "repo": repo}
        if name == "path":
            arguments: dict[str, Any] = {**target, "recursive": True, "limit": 50}
            if known.get("ref"):
                arguments["ref"] = known["ref"]
            tree = await self._run("get_file_tree", arguments)
            items = tree.get("items", []) if tree else []
            return [i["path"] for i in items if i.get("type") == "file" and not i.get("blocked")]
        if name == "ref":
            refs: list[str] = []
            for tool in ("list_branches", "list_tags"):
                listed = await self._run(tool, {**target, "limit": 50})
                refs += [i["name"] for i in (listed or {}).get("items", []) if i.get("name")]
            return refs
        return []

    async def _run(self, name: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        """A listing tool's structured result, or None when it refuses (a completion is a hint:
        a denied or missing repository completes to nothing, like an empty one)."""
        tool = self.registry.get(name)
        if tool is None:
            return None
        arguments = {k: v for k, v in arguments.items() if v is not None}
        try:
            return await tool.handler(validate_arguments(arguments, tool.input_schema), _Quiet())
        except (ToolError, ArgumentError):
            return None


def _cacheable(result: dict, session: ProtocolSession, ttl_ms: int, scope: str) -> dict:
    if versions.has_result_type(session.version):
        result.update(ttlMs=ttl_ms, cacheScope=scope)
    return result


def _no_cursor(message: Message) -> None:
    if message.params.get("cursor") is not None:
        raise JsonRpcError(INVALID_PARAMS, "Invalid cursor")


def _not_found(uri: str, text: str) -> JsonRpcError:
    return JsonRpcError(INVALID_PARAMS, text, data={"uri": uri[:2048]})
