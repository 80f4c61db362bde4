"""Files: directory trees and file contents."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ..mcp.registry import Tool, ToolError
from .base import (
    LIMIT,
    LINE,
    PAGE,
    PATH,
    REF,
    ToolEnv,
    checked,
    encoded_size,
    gitea_sha,
    make_tool,
    not_found,
    optional_ref,
    repo_path,
    repo_schema,
    text,
)
from .sanitize import looks_binary
from .validation import validate_line

_ENTRY_TYPES = {"blob": "file", "tree": "dir", "commit": "submodule"}
#: Room kept for the fields around a file's text.
_METADATA_ALLOWANCE = 2_000


def _entry(env: ToolEnv, path: str, kind: str, size: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": path, "type": kind}
    if kind == "file":
        entry["size"] = size
    if env.paths.is_sensitive(path):
        entry["blocked"] = True  # listed, but never read (a file, a symlink or a directory)
    return entry


async def get_file_tree(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    path = repo_path(arguments)
    env.check_path(path)
    ref = optional_ref(arguments) or await env.default_branch(owner, repo)
    page, limit = arguments["page"], arguments["limit"]
    what = f"{path or 'The root directory'} at {ref} in {owner}/{repo}"
    if arguments.get("recursive"):
        sha = ref if not path else await _directory_sha(env, owner, repo, path, ref, what)
        tree = await env.gitea(
            env.client.get_tree(owner, repo, sha, recursive=True, page=page, per_page=limit),
            what,
            (owner, repo),
        )
        prefix = f"{path}/" if path else ""
        items = [
            _entry(
                env,
                prefix + text(e.get("path")),
                _ENTRY_TYPES.get(text(e.get("type")), "file"),
                e.get("size"),
            )
            for e in tree.items
        ]
        has_more, total = tree.has_more, tree.total
    else:
        listing = await _contents(env, owner, repo, path, ref, what)
        if not isinstance(listing, list):
            raise ToolError(
                f"'{path}' is a file, not a directory; read it with get_file_contents.",
                reason="not_a_directory",
            )
        entries = [
            _entry(env, text(e.get("path")), e.get("type", "file"), e.get("size"))
            for e in sorted(listing, key=lambda e: (e.get("type") != "dir", text(e.get("path"))))
        ]
        start = (page - 1) * limit
        items, has_more, total = (
            entries[start : start + limit],
            start + limit < len(entries),
            len(entries),
        )
    return {
        "owner": owner,
        "repo": repo,
        "path": path,
        "ref": ref,
        "recursive": bool(arguments.get("recursive")),
        "items": items,
        "page": page,
        "limit": limit,
        "has_more": has_more,
        "total": total,
        "url": env.src_url(owner, repo, ref, path),
    }


async def _contents(env: ToolEnv, owner: str, repo: str, path: str, ref: str, what: str):
    if path:
        call = env.client.get_json(
            "contents", owner=owner, repo=repo, filepath=path, params={"ref": ref}
        )
    else:
        call = env.client.get_json("contents_root", owner=owner, repo=repo, params={"ref": ref})
    return await env.gitea(call, what, (owner, repo))


async def _directory_sha(
    env: ToolEnv, owner: str, repo: str, path: str, ref: str, what: str
) -> str:
    """The tree SHA of a directory: Gitea lists trees by SHA, and a directory's is in its
    parent's listing."""
    parent, _, name = path.rpartition("/")
    listing = await _contents(env, owner, repo, parent, ref, what)
    for entry in listing if isinstance(listing, list) else []:
        if entry.get("name") == name:
            if entry.get("type") != "dir":
                raise ToolError(
                    f"'{path}' is a file, not a directory; read it with get_file_contents.",
                    reason="not_a_directory",
                )
            return gitea_sha(entry.get("sha"), what)
    raise ToolError(not_found(what), reason="not_found")


async def get_file_contents(env: ToolEnv, arguments: dict, context) -> dict:
    owner, repo = env.target(arguments)
    path = repo_path(arguments)
    if not path:
        raise ToolError(
            "path is required: the file to read, e.g. README.md. List files with get_file_tree.",
            reason="invalid_arguments",
        )
    env.check_path(path)  # before any request: a blocked file is never fetched
    start_line = checked(validate_line, arguments.get("start_line") or 1, field="start_line")
    end_line = arguments.get("end_line")
    if end_line is not None:
        end_line = checked(validate_line, end_line, field="end_line")
        if end_line < start_line:
            raise ToolError("end_line must not be before start_line.", reason="invalid_arguments")
    ref = optional_ref(arguments) or await env.default_branch(owner, repo)
    what = f"File '{path}' at {ref} in {owner}/{repo}"
    await context.progress(f"reading {path}")
    data = await env.gitea(
        env.client.get_json("contents", owner=owner, repo=repo, filepath=path, params={"ref": ref}),
        what,
        (owner, repo),
    )
    if isinstance(data, list):
        raise ToolError(
            f"'{path}' is a directory; list it with get_file_tree.", reason="not_a_file"
        )
    result: dict[str, Any] = {
        "owner": owner,
        "repo": repo,
        "path": path,
        "ref": ref,
        "size": data.get("size"),
        "binary": False,
        "text": None,
        "truncated": False,
        "start_line": None,
        "end_line": None,
        "total_lines": None,
        "url": env.link(data.get("html_url"), env.src_url(owner, repo, ref, path)),
    }
    kind = data.get("type")
    if kind != "file":
        result["note"] = (
            f"'{path}' is a {kind}"
            + (f" pointing to {data.get('target')}" if data.get("target") else "")
            + "."
        )
        return result
    if data.get("content") is None:
        result.update(
            truncated=True,
            note="The file is larger than Gitea's API returns; only its metadata is available.",
        )
        return result
    try:
        raw = base64.b64decode(data["content"], validate=False)
    except (binascii.Error, ValueError, TypeError):
        raise ToolError(
            f"Gitea sent undecodable content for '{path}'.", reason="gitea_bad_response"
        ) from None
    if looks_binary(raw):
        result.update(binary=True, note="Binary file: its content is not returned as text.")
        return result
    lines = raw.decode("utf-8", errors="replace").splitlines(keepends=True)
    total = len(lines)
    if start_line > max(total, 1):
        # Known only once the file is read, so not "invalid_arguments" (which never reach Gitea).
        raise ToolError(
            f"start_line {start_line} is past the end of the file ({total} lines).",
            reason="line_out_of_range",
        )
    last = min(end_line or total, total)
    result.update(total_lines=total, start_line=start_line)
    budget = env.max_result_bytes - _METADATA_ALLOWANCE - encoded_size(result)
    chosen = lines[start_line - 1 : last]
    if encoded_size("".join(chosen)) > budget:  # rarely: only then count line by line
        chosen, used = [], 0
        for line in lines[start_line - 1 : last]:
            size = encoded_size(line) - 2  # its size inside the JSON string
            if used + size > budget and chosen:
                break
            chosen.append(line)
            used += size
    shown_end = start_line + len(chosen) - 1
    result.update(text="".join(chosen), end_line=max(shown_end, start_line) if total else None)
    if shown_end < last:
        result.update(
            truncated=True,
            next_start_line=shown_end + 1,
            note=(
                f"Shown lines {start_line}-{shown_end} of {total} (the result size limit). "
                f"Call again with start_line={shown_end + 1} for the rest."
            ),
        )
    return result


def tools(env: ToolEnv) -> list[Tool]:
    return [
        make_tool(
            env,
            "get_file_tree",
            "List files",
            "A directory (no path: the root), or with recursive every file below it: {path, "
            "type: file|dir|submodule, size}; blocked=true: a sensitive file, never readable. "
            "Paged.",
            repo_schema(
                path=PATH,
                ref=REF,
                recursive={"type": "boolean", "default": False},
                page=PAGE,
                limit=LIMIT,
            ),
            get_file_tree,
        ),
        make_tool(
            env,
            "get_file_contents",
            "Read a file",
            "A text file at ref. Long files come in parts (truncated=true, next_start_line); "
            "start_line..end_line (from 1) reads a range. Binary: text null. Secrets are "
            "redacted; sensitive files (keys, .env) refused.",
            repo_schema(
                "path",
                path=PATH,
                ref=REF,
                start_line=LINE,
                end_line=LINE,
            ),
            get_file_contents,
        ),
    ]
