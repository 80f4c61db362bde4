"""The tools' input schemas: the same argument names, types and limits in every tool.

Every limit a schema states comes from ``tools/validation.py`` (and Gitea's paging limits from
``gitea/limits.py``), so a schema never refuses what validation allows. tools/list, output
schemas and all, must stay under 16 KB for a caller with every tool
(tests/tools/test_registry.py): descriptions only where the name does not say it all, and
bounds no real caller meets are validation's alone.
"""

from __future__ import annotations

from typing import Any

from .validation import (
    DEFAULT_LIMIT,
    DEFAULT_PAGE,
    MAX_LIMIT,
    MAX_PAGE,
    PATH_MAX_BYTES,
    REF_MAX_BYTES,
    SHA_MAX_LENGTH,
    SHA_MIN_LENGTH,
)

__all__ = [
    "LIMIT",
    "LINE",
    "NUMBER",
    "OWNER",
    "PAGE",
    "PATH",
    "REF",
    "REPO",
    "SHA",
    "STATE",
    "repo_schema",
    "schema",
]

# Bounds no real caller meets (an owner of 41 characters, issue 2**31, line ten million) are
# left to the tools' validation, which refuses them with a clear error: 22 tools repeat owner
# and repo, and 22 copies of their bounds do not fit tools/list's 16 KB. (PAGE keeps its bound
# and default: nothing else checks a page number.)
OWNER = {"type": "string"}
REPO = {"type": "string"}
#: A branch, tag or SHA (the default branch where a tool lets it out). Characters, not bytes:
#: the schema is a first, cheap bound; validation counts bytes.
REF = {"type": "string", "maxLength": REF_MAX_BYTES}
PATH = {"type": "string", "maxLength": PATH_MAX_BYTES}
SHA = {
    "type": "string",
    "minLength": SHA_MIN_LENGTH,
    "maxLength": SHA_MAX_LENGTH,
}
PAGE = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}
LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
NUMBER = {"type": "integer", "minimum": 1}
LINE = NUMBER
STATE = {"type": "string", "enum": ["open", "closed", "all"], "default": "open"}


def schema(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        value["required"] = required
    value["additionalProperties"] = False
    return value


def repo_schema(*extra_required: str, **properties: dict[str, Any]) -> dict[str, Any]:
    return schema(["owner", "repo", *extra_required], owner=OWNER, repo=REPO, **properties)
