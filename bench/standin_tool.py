"""A stand-in ``get_file_contents`` for the benchmark, used only while the product has none.

It does what the issue says the real tool does, with the product's own parts: argument
validation (``tools.validation``), the repository and sensitive-path policy (``tools.policy``),
``GET /repos/{owner}/{repo}`` then ``GET /repos/{owner}/{repo}/contents/{path}?ref=`` through
the product's ``GiteaClient`` (requests-futures, pool 16), base64 decoding, the binary check
and ``clean_text`` (invisible characters, secret redaction), and the size cap. It does not
cache the repository lookup (the real tool may): both upstream calls are made on every call,
which the fake Gitea counts, so the report can show calls per tool call for every server.
"""

from __future__ import annotations

import base64
from typing import Any

from aegis_tornado.gitea.client import GiteaClient
from aegis_tornado.mcp.registry import Tool, ToolDenied, ToolError
from aegis_tornado.tools import sanitize, validation
from aegis_tornado.tools.policy import PathPolicy, RepoPolicy

INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "owner": {"type": "string", "description": "Repository owner"},
        "repo": {"type": "string", "description": "Repository name"},
        "path": {"type": "string", "description": "File path from the repository root"},
        "ref": {"type": "string", "description": "Branch, tag or commit (default branch if omitted)"},
    },
    "required": ["owner", "repo", "path"],
    "additionalProperties": False,
}


def make_tool(settings) -> Tool:
    client = GiteaClient(
        settings.gitea_url, settings.gitea_token, timeout=settings.gitea_timeout,
        retries=settings.gitea_retries, pool_size=settings.gitea_pool_size,
    )
    repos = RepoPolicy(settings.repo_allowlist, settings.repo_denylist)
    paths = PathPolicy(settings.sensitive_paths)
    limit = settings.max_result_bytes

    async def get_file_contents(args: dict[str, Any], ctx) -> dict[str, Any]:
        try:
            owner = validation.validate_owner(args["owner"])
            repo = validation.validate_repo(args["repo"])
            path = validation.normalize_path(args["path"], allow_empty=False)
            ref_arg = validation.validate_ref(args["ref"]) if args.get("ref") else None
        except validation.ValidationError as error:
            raise ToolError(error.message, reason="invalid_arguments") from None
        if repos.denial_reason(owner, repo):
            raise ToolError(f"Repository not found: {owner}/{repo}", reason="repo_denied")
        if paths.blocked_reason(path):
            raise ToolDenied(f"{path} is a sensitive file; its content is not returned",
                             reason="sensitive_path")
        info = await client.get_json("repo", owner=owner, repo=repo)
        ref = ref_arg or info.get("default_branch") or "main"
        data = await client.get_json("contents", params={"ref": ref}, owner=owner, repo=repo,
                                     filepath=path)
        if not isinstance(data, dict) or data.get("type") != "file":
            raise ToolError(f"{path} is not a file")
        raw = base64.b64decode(data.get("content") or "")
        if sanitize.looks_binary(raw):
            raise ToolError(f"{path} is a binary file")
        cleaned = sanitize.clean_text(raw.decode("utf-8", "replace"))
        text, truncated = sanitize.truncate_utf8(cleaned.text, limit)
        return {
            "owner": owner, "repo": repo, "path": path, "ref": ref, "sha": data.get("sha"),
            "size": data.get("size"), "content": text, "truncated": truncated,
            "redactions": len(cleaned.redactions), "url": data.get("html_url"),
        }

    return Tool(
        name="get_file_contents",
        title="Get file contents",
        description="Read one file of a repository (bench stand-in).",
        input_schema=INPUT_SCHEMA,
        handler=get_file_contents,
    )
