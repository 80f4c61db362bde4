"""Reading Gitea's answers.

The client checks the top-level shape of every answer; inside it, a field may still be of any
JSON type (an older or patched Gitea, a proxy's error page). Tools read nested fields through
these, so a surprising type becomes an empty value, never a crash.
"""

from __future__ import annotations

import re
from typing import Any

from ..mcp.registry import ToolError
from .validation import SHA_MAX_LENGTH, SHA_MIN_LENGTH

__all__ = ["gitea_sha", "obj", "objs", "text"]


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``{}``."""
    return value if isinstance(value, dict) else {}


def objs(value: Any) -> list[dict[str, Any]]:
    """The objects in ``value`` if it is a list, else ``[]``."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def text(value: Any) -> str:
    """``value`` if it is a string, else ``""``."""
    return value if isinstance(value, str) else ""


_GITEA_SHA = re.compile(f"[0-9a-fA-F]{{{SHA_MIN_LENGTH},{SHA_MAX_LENGTH}}}")


def gitea_sha(value: Any, what: str) -> str:
    """An object name Gitea gave us, before it goes into an API path: hex, or the answer is
    unusable."""
    if isinstance(value, str) and _GITEA_SHA.fullmatch(value):
        return value
    raise ToolError(
        f"Gitea sent a response the server could not use: no object name for {what}.",
        reason="gitea_bad_response",
    )
