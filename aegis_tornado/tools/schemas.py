"""The tools' input schemas: the same argument names, types and limits in every tool.

Every limit comes from ``tools/validation.py`` (and Gitea's paging limits from
``gitea/limits.py``), so a schema never allows what validation refuses or the other way round.
Descriptions only where the name does not say it all: tools/list must stay small (< 12 KB).
"""

from __future__ import annotations

from typing import Any

from .validation import (
    DEFAULT_LIMIT,
    DEFAULT_PAGE,
    MAX_LIMIT,
    MAX_LINE,
    MAX_NUMBER,
    MAX_PAGE,
    OWNER_MAX_LENGTH,
    PATH_MAX_BYTES,
    REF_MAX_BYTES,
    REPO_MAX_LENGTH,
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

OWNER = {"type": "string", "minLength": 1, "maxLength": OWNER_MAX_LENGTH}
REPO = {"type": "string", "minLength": 1, "maxLength": REPO_MAX_LENGTH}
REF = {
    "type": "string",
    # Characters, not bytes: the schema is a first, cheap bound; validation counts bytes.
    "maxLength": REF_MAX_BYTES,
    "description": "Branch, tag or commit SHA; default: the default branch.",
}
PATH = {"type": "string", "maxLength": PATH_MAX_BYTES, "description": "From the repository root."}
SHA = {
    "type": "string",
    "minLength": SHA_MIN_LENGTH,
    "maxLength": SHA_MAX_LENGTH,
    "description": f"Commit SHA (at least {SHA_MIN_LENGTH} hex characters).",
}
PAGE = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}
LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
NUMBER = {"type": "integer", "minimum": 1, "maximum": MAX_NUMBER}
LINE = {"type": "integer", "minimum": 1, "maximum": MAX_LINE}
STATE = {"type": "string", "enum": ["open", "closed", "all"], "default": "open"}


def schema(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def repo_schema(*extra_required: str, **properties: dict[str, Any]) -> dict[str, Any]:
    return schema(["owner", "repo", *extra_required], owner=OWNER, repo=REPO, **properties)
