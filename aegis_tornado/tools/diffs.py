"""Unified diffs handed to a model: sensitive files cut out."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .policy import PathPolicy
from .sanitize import truncate_utf8

if TYPE_CHECKING:
    from .base import ToolEnv

_FILE_HEADER = re.compile(r"^diff --git a/(?P<a>.*?) b/(?P<b>.*)$", re.M)


def filter_diff(diff: str, paths: PathPolicy) -> tuple[str, list[str]]:
    """The diff without the sections of sensitive files (a one-line note instead), and their
    paths. A diff of a key file is the key file."""
    starts = [m.start() for m in _FILE_HEADER.finditer(diff)]
    if not starts:
        return diff, []
    kept = [diff[: starts[0]]]
    omitted: list[str] = []
    for start, end in zip(starts, starts[1:] + [len(diff)]):
        section = diff[start:end]
        header = _FILE_HEADER.match(section)
        names = {header.group("a"), header.group("b")} if header else set()
        if any(paths.is_sensitive(name) for name in names):
            name = header.group("b") if header else "?"
            omitted.append(name)
            kept.append(f"diff --git a/{name} b/{name}\n[diff omitted: sensitive file, blocked by "
                        "policy]\n")
        else:
            kept.append(section)
    return "".join(kept), omitted



async def read_diff(env: "ToolEnv", endpoint: str, what: str, **path: Any) -> dict[str, Any]:
    """The result fields for a commit's or pull request's diff: filtered, then capped at half
    the result size so the rest of the result always fits."""
    diff = await env.gitea(env.client.get_text(endpoint, diffType="diff", **path), what)
    diff, omitted = filter_diff(diff, env.paths)
    diff, cut = truncate_utf8(diff, env.max_result_bytes // 2)
    fields: dict[str, Any] = {"diff": diff, "diff_truncated": cut}
    if omitted:
        fields["diff_omitted_by_policy"] = omitted
    return fields
