"""Tool arguments through ``tools/validation.py``: a rule broken is the error the model sees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..mcp.registry import ToolError
from .validation import (
    ValidationError,
    normalize_path,
    validate_owner,
    validate_ref,
    validate_repo,
)

__all__ = ["checked", "optional_ref", "owner_repo", "repo_path"]

T = TypeVar("T")


def checked(function: Callable[..., T], value: Any, *args: Any, **kwargs: Any) -> T:
    """Run a validator, turning its failure into the tool error the model sees."""
    try:
        return function(value, *args, **kwargs)
    except ValidationError as error:
        raise ToolError(str(error), reason="invalid_arguments") from None


def owner_repo(arguments: dict[str, Any]) -> tuple[str, str]:
    return checked(validate_owner, arguments["owner"]), checked(validate_repo, arguments["repo"])


def optional_ref(arguments: dict[str, Any]) -> str | None:
    ref = arguments.get("ref")
    return checked(validate_ref, ref) if ref else None


def repo_path(arguments: dict[str, Any], field: str = "path") -> str:
    return checked(normalize_path, arguments.get(field) or "", field=field)
