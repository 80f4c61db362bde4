"""The tool registry: every tool is declared once here and served by every transport."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import versions
from .arguments import check_schema


class ToolError(Exception):
    """A failure the model should see and can act on: answered as an ``isError`` result.

    ``audit_status`` is what the audit log records: ``error`` for failures, ``denied`` when the
    access policy refused the call.
    """

    audit_status = "error"

    def __init__(self, message: str, *, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason


class ToolDenied(ToolError):
    """The access policy refused the call (a sensitive file, say)."""

    audit_status = "denied"


class ToolContext(Protocol):
    """What a running tool may do besides returning its result."""

    async def progress(self, message: str | None = None, total: float | None = None) -> None:
        """Tell the client the call is making progress (sent only if it asked for progress)."""

    async def log(self, level: str, data: Any) -> None:
        """Send a log message to the client (only at or above the level it set)."""


ToolHandler = Callable[[dict[str, Any], ToolContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Tool:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    handler: ToolHandler = field(repr=False)
    read_only: bool = True
    #: The tool reaches outside the server (Gitea): MCP's openWorldHint.
    open_world: bool = True
    output_schema: dict[str, Any] | None = None

    def descriptor(self, version: str = versions.LATEST) -> dict[str, Any]:
        """The ``tools/list`` entry, with only the fields ``version`` knows."""
        entry: dict[str, Any] = {"name": self.name}
        if versions.has_structured_output(version) and self.title:  # "": the name says it
            entry["title"] = self.title
        entry["description"] = self.description
        entry["inputSchema"] = self.input_schema
        if versions.has_structured_output(version) and self.output_schema is not None:
            entry["outputSchema"] = self.output_schema
        if versions.has_annotations(version):
            annotations: dict[str, Any] = {}
            if not versions.has_structured_output(version) and self.title:
                annotations["title"] = self.title  # the only place this version has a title
            annotations.update(readOnlyHint=self.read_only, openWorldHint=self.open_world)
            # idempotentHint and destructiveHint mean something only when readOnlyHint is false
            # (MCP's ToolAnnotations); left out for read-only tools, tools/list stays small.
            if not self.read_only:
                annotations["destructiveHint"] = False
            entry["annotations"] = annotations
        return entry


class ToolRegistry:
    def __init__(self, tools: list[Tool] | None = None):
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.add(tool)

    def add(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} registered twice")
        if tool.input_schema.get("type") != "object":
            raise ValueError(f"tool {tool.name!r}: inputSchema must have type object")
        check_schema(tool.input_schema, f"tool {tool.name!r} inputSchema")
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def descriptors(self, version: str = versions.LATEST) -> list[dict[str, Any]]:
        return [tool.descriptor(version) for tool in self]
