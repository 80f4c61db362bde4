"""What every Gitea tool shares: the environment it runs in, argument checks, Gitea error
mapping, the access policy, web links, and the finishing of results (sanitised, size-limited).

Tools know nothing of transports: they receive checked arguments and a ``ToolContext``, and
return a JSON-ready dict or raise ``ToolError``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

from ..gitea import (
    GiteaAuthError,
    GiteaBadRequest,
    GiteaBadResponse,
    GiteaClient,
    GiteaEmptyRepository,
    GiteaError,
    GiteaNotFound,
    GiteaUnavailable,
    Page,
)
from ..gitea.credentials import credential_identity
from ..mcp.registry import Tool, ToolContext, ToolDenied, ToolError
from .policy import PathPolicy, RepoPolicy
from .sanitize import clean_text, truncate_utf8
from .validation import (
    ValidationError,
    normalize_path,
    validate_owner,
    validate_ref,
    validate_repo,
)

T = TypeVar("T")
_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")

#: Shorter than every secret format the sanitiser knows (names, refs, dates, states...).
_SHORTEST_SECRET = 16
#: Text longer than this is cleaned off the event loop.
_CLEAN_IN_THREAD_BYTES = 64 * 1024
REPO_CACHE_SECONDS = 30.0


def not_found(what: str) -> str:
    return f"{what} not found, or not visible to the server's Gitea account"


@dataclass
class ToolEnv:
    """The services and settings the tools run with."""

    client: GiteaClient
    repos: RepoPolicy
    paths: PathPolicy
    public_url: str  # Gitea's web address, for links given to the model
    max_result_bytes: int = 100_000
    #: The server's own secrets (the Gitea token): redacted from every result, whatever the
    #: content that carries them (a committed CI file, an echoing proxy).
    withheld: tuple[str, ...] = ()
    _repo_cache: dict[tuple[str, str, str], tuple[float, dict]] = field(default_factory=dict)

    # --- links ---------------------------------------------------------------------------

    def web_url(self, *parts: Any) -> str:
        """A Gitea web URL from parts (each percent-encoded, '/' kept). Parts may come from
        Gitea's answers, so anything that is not a string is written as one."""
        return "/".join(
            [
                self.public_url.rstrip("/"),
                *(quote(str(p), safe="/") for p in parts if p not in (None, "")),
            ]
        )

    def repo_url(self, owner: str, repo: str) -> str:
        return self.web_url(owner, repo)

    def src_url(self, owner: str, repo: str, ref: str, path: str = "") -> str:
        """The web page of a path at a ref. Gitea's URL names the kind of ref; a full SHA is a
        commit, anything else is taken for a branch (tags still resolve: Gitea redirects)."""
        kind = "commit" if _FULL_SHA.fullmatch(ref) else "branch"
        return self.web_url(owner, repo, "src", kind, ref, path)

    def link(self, gitea_url: Any, fallback: str) -> str:
        """A URL Gitea gave us, moved onto the public web address; else ``fallback``."""
        base = self.client.base_url.rstrip("/")
        if isinstance(gitea_url, str) and gitea_url.startswith(base + "/"):
            return self.public_url.rstrip("/") + gitea_url[len(base) :]
        return fallback

    # --- policy ---------------------------------------------------------------------------

    def check_repo(self, owner: str, repo: str) -> None:
        """A denied repository is indistinguishable from a missing one, and Gitea never hears
        its name."""
        if not self.repos.allows(owner, repo):
            raise ToolDenied(not_found(f"Repository {owner}/{repo}"), reason="repo_policy")

    def target(self, arguments: dict[str, Any]) -> tuple[str, str]:
        """The validated ``owner``/``repo`` of a call, refused here if the policy denies it:
        every repository tool starts with this, so none can forget the policy."""
        owner, repo = owner_repo(arguments)
        self.check_repo(owner, repo)
        return owner, repo

    def check_path(self, path: str) -> None:
        pattern = self.paths.blocked_reason(path) if path else None
        if pattern is not None:
            raise ToolDenied(
                f"Blocked by policy: '{path}' matches the sensitive-file pattern '{pattern}'. "
                "Its content is never returned; do not retry it.",
                reason="sensitive_path",
            )

    # --- Gitea calls ----------------------------------------------------------------------

    async def gitea(
        self, call: Awaitable[T], what: str = "", repo: tuple[str, str] | None = None
    ) -> T:
        """Await a Gitea call, turning its failures into messages a model can act on.

        ``repo`` is the repository the call is about. When Gitea answers 404, the repository
        itself is looked up: if it is missing, the message says so exactly as for a repository
        the policy denies, so no tool tells the two apart."""
        try:
            return await call
        except GiteaNotFound:
            missing = ToolError(not_found(what or "The requested object"), reason="not_found")
        except GiteaEmptyRepository:
            raise ToolError(
                "The repository is empty: it has no commits, files or branches yet.",
                reason="empty_repository",
            ) from None
        except GiteaAuthError as error:
            if credential_identity():  # an OAuth caller: their own Gitea authorization failed
                raise ToolError(
                    "Gitea refused your Gitea authorization (revoked, expired, or without "
                    "permission for this). If you revoked this application in Gitea, sign in "
                    "again.",
                    reason="gitea_auth",
                ) from None
            raise ToolError(
                "Gitea refused the server's own token (rejected, expired or missing a read "
                f"scope): {error.message} Tell the server's operator; retrying will not help.",
                reason="gitea_auth",
            ) from None
        except GiteaUnavailable as error:
            raise ToolError(
                f"Gitea is unavailable right now ({error.message}). Try again in a minute.",
                reason="gitea_unavailable",
            ) from None
        except GiteaBadRequest as error:
            raise ToolError(
                f"Gitea rejected the request: {error.message}", reason="gitea_bad_request"
            ) from None
        except GiteaBadResponse as error:
            raise ToolError(
                f"Gitea sent a response the server could not use: {error.message}",
                reason="gitea_bad_response",
            ) from None
        except GiteaError as error:  # any future subclass
            raise ToolError(f"Gitea call failed: {error.message}", reason="gitea_error") from None
        if repo is not None and not what.startswith("Repository "):
            await self.repository(*repo)  # "Repository ... not found" when it is the one missing
        raise missing

    async def page(
        self,
        endpoint: str,
        arguments: dict[str, Any],
        what: str,
        params: dict[str, Any] | None = None,
        **path: Any,
    ) -> Page:
        """One page of a Gitea list, as the call's ``page`` and ``limit`` ask."""
        repo = (path["owner"], path["repo"]) if "owner" in path and "repo" in path else None
        return await self.gitea(
            self.client.get_page(
                endpoint, page=arguments["page"], limit=arguments["limit"], params=params, **path
            ),
            what,
            repo,
        )

    async def repository(self, owner: str, repo: str) -> dict:
        """Repository metadata (policy-checked), cached briefly: most tools need the default
        branch, and a conversation reads the same repository many times in a row."""
        self.check_repo(owner, repo)
        # Per whose rights read it: one OAuth user's private repository is not another's.
        key = (credential_identity(), owner.lower(), repo.lower())
        cached = self._repo_cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < REPO_CACHE_SECONDS:
            return cached[1]
        data = await self.gitea(
            self.client.get_json("repo", owner=owner, repo=repo), f"Repository {owner}/{repo}"
        )
        full_name = data.get("full_name")
        if (
            isinstance(full_name, str)
            and "/" in full_name
            and not self.repos.allows_full_name(full_name)
        ):
            # Defence in depth: the client follows no redirect into a denied repository.
            raise ToolDenied(not_found(f"Repository {owner}/{repo}"), reason="repo_policy")
        if _cacheable_repository(data):
            # Only an answer that looks like Gitea's: a stray one (a proxy's page, a half-upgraded
            # Gitea) must not outlive the moment Gitea answers properly again.
            if len(self._repo_cache) >= 512:
                self._repo_cache.clear()
            self._repo_cache[key] = (now, data)
        return data

    async def default_branch(self, owner: str, repo: str) -> str:
        data = await self.repository(owner, repo)
        if data.get("empty") is True:
            raise ToolError(
                f"Repository {owner}/{repo} is empty: it has no commits or files yet.",
                reason="empty_repository",
            )
        branch = data.get("default_branch") or "main"
        try:
            return validate_ref(branch)
        except ValidationError:  # Gitea named something no branch can be called
            raise ToolError(
                f"Gitea sent a response the server could not use: repository "
                f"{owner}/{repo} has no usable default branch.",
                reason="gitea_bad_response",
            ) from None

    # --- results --------------------------------------------------------------------------

    async def clean(self, text: str | None) -> tuple[str | None, int, tuple[str, ...]]:
        """Strip invisible characters and redact secrets (off the loop for big texts)."""
        if not text or (
            len(text) < self._shortest_secret and text.isascii() and text.isprintable()
        ):
            return text, 0, ()  # nothing invisible, and too short for any secret it knows
        if len(text) > _CLEAN_IN_THREAD_BYTES:
            result = await asyncio.to_thread(clean_text, text)
        else:
            result = clean_text(text)
        cleaned, redactions = result.text, result.redactions
        for secret in self.withheld:
            if secret and secret in cleaned:
                cleaned = cleaned.replace(secret, "[REDACTED:gitea-token]")
                redactions = (*redactions, "gitea-token")
        return cleaned, result.invisible_removed, redactions

    @functools.cached_property
    def _shortest_secret(self) -> int:
        """Below this length a string can hold no secret format and no withheld token."""
        return min([_SHORTEST_SECRET, *(len(s) for s in self.withheld if s)])

    async def finish(self, value: dict[str, Any]) -> dict[str, Any]:
        """Sanitise every string in the result, then keep it within MAX_RESULT_BYTES."""
        stats = {"invisible": 0, "redactions": []}

        async def walk(node: Any) -> Any:
            if isinstance(node, str):
                text, removed, redactions = await self.clean(node)
                stats["invisible"] += removed
                stats["redactions"].extend(redactions)
                return text
            if isinstance(node, dict):
                return {k: await walk(v) for k, v in node.items()}
            if isinstance(node, list):
                return [await walk(v) for v in node]
            return node

        cleaned = await walk(value)
        if stats["invisible"] or stats["redactions"]:
            cleaned["sanitized"] = {
                "invisible_characters_removed": stats["invisible"],
                "secrets_redacted": sorted(set(stats["redactions"])),
            }
        return fit_result(cleaned, self.max_result_bytes)


def _cacheable_repository(data: dict[str, Any]) -> bool:
    full_name, branch = data.get("full_name"), data.get("default_branch")
    return (
        isinstance(full_name, str)
        and full_name.count("/") == 1
        and isinstance(data.get("empty"), bool)
        and (branch is None or (isinstance(branch, str) and bool(branch)))
    )


def encoded_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


def fit_result(value: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Keep a result within ``max_bytes`` of JSON, saying what was cut.

    Lists lose items from the end; otherwise the longest strings are shortened. Either way the
    result says ``truncated: true`` and how to get the rest.
    """
    if encoded_size(value) <= max_bytes:
        return value
    value = dict(value)
    items = value.get("items")
    if isinstance(items, list) and items:
        kept = list(items)
        while kept and encoded_size({**value, "items": kept}) > max_bytes - 300:
            kept.pop()
        omitted = len(items) - len(kept)
        value.update(
            items=kept,
            has_more=True,
            truncated=True,
            truncated_note=(
                f"{omitted} item(s) omitted to stay under {max_bytes} bytes; ask for a smaller "
                "limit or the next page"
            ),
        )
        if encoded_size(value) <= max_bytes:
            return value
    # Shorten the longest strings until it fits.
    value["truncated"] = True
    value.setdefault("truncated_note", f"long text was cut to stay under {max_bytes} bytes")
    for _ in range(50):
        excess = encoded_size(value) - max_bytes
        if excess <= 0:
            break
        path, text = _longest_string(value)
        if text is None or not text:
            break
        budget = max(0, len(text.encode("utf-8")) - excess - 200)
        _set_path(value, path, truncate_utf8(text, budget)[0] + " [...truncated]")
    return value


def _longest_string(node: Any, path: tuple = ()) -> tuple[tuple, str | None]:
    best: tuple[tuple, str | None] = ((), None)
    if isinstance(node, str):
        return path, node
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        if key == "truncated_note":
            continue
        found = _longest_string(child, path + (key,))
        if found[1] is not None and (best[1] is None or len(found[1]) > len(best[1])):
            best = found
    return best


def _set_path(node: Any, path: tuple, value: str) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def list_result(page: Page, items: list[Any], *, total_known: bool = True) -> dict[str, Any]:
    """The shape every list tool returns."""
    return {
        "items": items,
        "page": page.page,
        "limit": page.limit,
        "has_more": page.has_more,
        "total": page.total if total_known else None,
    }


# --- Gitea's answers ---------------------------------------------------------------------
# The client checks the top-level shape of every answer; inside it, a field may still be of
# any JSON type (an older or patched Gitea, a proxy's error page). Tools read nested fields
# through these, so a surprising type becomes an empty value, never a crash.


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``{}``."""
    return value if isinstance(value, dict) else {}


def objs(value: Any) -> list[dict[str, Any]]:
    """The objects in ``value`` if it is a list, else ``[]``."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def text(value: Any) -> str:
    """``value`` if it is a string, else ``""``."""
    return value if isinstance(value, str) else ""


_GITEA_SHA = re.compile(r"[0-9a-fA-F]{4,64}")


def gitea_sha(value: Any, what: str) -> str:
    """An object name Gitea gave us, before it goes into an API path: hex, or the answer is
    unusable."""
    if isinstance(value, str) and _GITEA_SHA.fullmatch(value):
        return value
    raise ToolError(
        f"Gitea sent a response the server could not use: no object name for {what}.",
        reason="gitea_bad_response",
    )


# --- argument handling ------------------------------------------------------------------


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


# --- schemas ------------------------------------------------------------------------------
# The same argument names, types and limits in every tool.

# Descriptions only where the name does not say it all: tools/list must stay small (< 12 KB).
OWNER = {"type": "string", "minLength": 1, "maxLength": 100}
REPO = {"type": "string", "minLength": 1, "maxLength": 100}
REF = {
    "type": "string",
    "maxLength": 255,
    "description": "Branch, tag or commit SHA; default: the default branch.",
}
PATH = {"type": "string", "maxLength": 4096, "description": "From the repository root."}
PAGE = {"type": "integer", "minimum": 1, "maximum": 100000, "default": 1}
LIMIT = {"type": "integer", "minimum": 1, "maximum": 50, "default": 30}
NUMBER = {"type": "integer", "minimum": 1, "maximum": 2147483647}
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


def make_tool(
    env: ToolEnv,
    name: str,
    title: str,
    description: str,
    input_schema: dict[str, Any],
    handler: Callable[[ToolEnv, dict[str, Any], ToolContext], Awaitable[dict]],
) -> Tool:
    """A read-only Gitea tool whose result is always finished (sanitised, size-limited)."""

    async def run(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        return await env.finish(await handler(env, arguments, context))

    return Tool(
        name=name,
        title=title,
        description=description,
        input_schema=input_schema,
        handler=run,
        read_only=True,
        open_world=False,
    )
