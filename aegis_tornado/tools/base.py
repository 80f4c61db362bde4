"""What every Gitea tool shares: :class:`ToolEnv`, the environment a tool runs in, and
:func:`make_tool`.

``ToolEnv`` only puts together the parts each job lives in, and gives tools one short
name for each:

========================  ==================================================================
``tools/gate.py``         the access policy at the door: the repository gate every Gitea call
                          goes through, and the sensitive-path refusal
``tools/upstream.py``     Gitea's failures as errors a model can act on
``tools/repo_cache.py``   repository metadata, kept briefly
``tools/links.py``        web links on Gitea's public address
``tools/results.py``      finishing results: sanitised, within ``MAX_RESULT_BYTES``
``tools/arguments.py``    argument checks (through ``tools/validation.py``)
``tools/schemas.py``      input schemas, built from validation's limits
``tools/answers.py``      reading Gitea's answers defensively
========================  ==================================================================

Tools know nothing of transports: they receive checked arguments and a ``ToolContext``, and
return a JSON-ready dict or raise ``ToolError``. The names tools import from here before the
split are still importable from here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..gitea import GiteaClient, Page
from ..mcp.registry import Tool, ToolContext, ToolDenied, ToolError
from .answers import gitea_sha, obj, objs, text
from .arguments import checked, optional_ref, owner_repo, repo_path
from .gate import RepositoryGate, denial_scope, refuse_sensitive_path
from .links import Links
from .policy import PathPolicy, RepoPolicy
from .repo_cache import REPO_CACHE_SECONDS, RepositoryCache
from .results import ResultFinisher, encoded_size, fit_result, list_result
from .schemas import (
    LIMIT,
    LINE,
    NUMBER,
    OWNER,
    PAGE,
    PATH,
    REF,
    REPO,
    SHA,
    STATE,
    repo_schema,
    schema,
)
from .upstream import NOT_FOUND, gitea_call, not_found
from .validation import ValidationError, validate_ref

__all__ = [
    "LIMIT",
    "LINE",
    "NUMBER",
    "OWNER",
    "PAGE",
    "PATH",
    "REF",
    "REPO",
    "REPO_CACHE_SECONDS",
    "SHA",
    "STATE",
    "ToolEnv",
    "checked",
    "encoded_size",
    "fit_result",
    "gitea_sha",
    "list_result",
    "make_tool",
    "not_found",
    "obj",
    "objs",
    "optional_ref",
    "owner_repo",
    "repo_path",
    "repo_schema",
    "schema",
    "text",
]

T = TypeVar("T")


class ToolEnv:
    """The services and settings the tools run with."""

    def __init__(
        self,
        client: GiteaClient,
        repos: RepoPolicy,
        paths: PathPolicy,
        public_url: str,
        max_result_bytes: int = 100_000,
        withheld: tuple[str, ...] = (),
    ) -> None:
        #: Every Gitea call of every tool goes through the gate: a denied repository is asked
        #: about under a name that cannot exist, so it answers (and costs) as a missing one.
        self.client = RepositoryGate(client, repos)
        self.repos = repos
        self.paths = paths
        self.links = Links(public_url, client.base_url)
        self.results = ResultFinisher(max_result_bytes, withheld)
        self.repo_cache = RepositoryCache()

    @property
    def public_url(self) -> str:
        """Gitea's web address, for links given to the model."""
        return self.links.public_url

    @property
    def max_result_bytes(self) -> int:
        return self.results.max_result_bytes

    @property
    def withheld(self) -> tuple[str, ...]:
        return self.results.withheld

    # --- links (tools/links.py) ----------------------------------------------------------

    def web_url(self, *parts: Any) -> str:
        return self.links.web_url(*parts)

    def repo_url(self, owner: str, repo: str) -> str:
        return self.links.repo_url(owner, repo)

    def src_url(self, owner: str, repo: str, ref: str, path: str = "") -> str:
        return self.links.src_url(owner, repo, ref, path)

    def link(self, gitea_url: Any, fallback: str) -> str:
        return self.links.link(gitea_url, fallback)

    # --- policy (tools/gate.py) ----------------------------------------------------------

    def target(self, arguments: dict[str, Any]) -> tuple[str, str]:
        """The validated ``owner``/``repo`` of a call.

        Whether the policy allows it is *not* decided here: a denied repository must take the
        path a missing one takes (every argument checked, the same Gitea round trips, the same
        words), so it is decided by the gate every Gitea call goes through (``tools/gate.py``).
        """
        return owner_repo(arguments)

    def check_path(self, path: str) -> None:
        """Refuse a sensitive path (``ToolDenied``) before anything asks Gitea about it."""
        refuse_sensitive_path(self.paths, path)

    # --- Gitea calls (tools/upstream.py, tools/repo_cache.py) ---------------------------

    async def gitea(
        self, call: Awaitable[T], what: str = "", repo: tuple[str, str] | None = None
    ) -> T:
        """Await a Gitea call, turning its failures into messages a model can act on.

        ``repo`` is the repository the call is about. When Gitea answers 404, the repository
        itself is looked up: if it is the one missing (or denied), the message says so, in
        the same words either way."""
        try:
            return await gitea_call(call, what)
        except ToolError as error:
            if error.reason != NOT_FOUND or repo is None or what.startswith("Repository "):
                raise
            missing = error
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
        """Repository metadata, cached briefly (``tools/repo_cache.py``)."""
        cached = self.repo_cache.get(owner, repo)
        if cached is not None:
            return cached
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
        self.repo_cache.put(owner, repo, data)
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

    # --- results (tools/results.py) ------------------------------------------------------

    async def clean(self, text: str | None) -> tuple[str | None, int, tuple[str, ...]]:
        return await self.results.clean(text)

    async def finish(self, value: dict[str, Any]) -> dict[str, Any]:
        return await self.results.finish(value)


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
        with denial_scope() as scope:
            try:
                return await env.finish(await handler(env, arguments, context))
            except ToolError as error:
                if not scope.denied or isinstance(error, ToolDenied):
                    raise
                # Same words as for a missing repository; the audit log alone says why.
                raise ToolDenied(error.message, reason="repo_policy") from None

    if title.lower() == name.replace("_", " "):
        # "List branches" for list_branches says nothing more: a client shows the name, and
        # tools/list (every tool, output schemas and all) must stay under 16 KB.
        title = ""
    return Tool(
        name=name,
        title=title,
        description=description,
        input_schema=input_schema,
        handler=run,
        read_only=True,
        open_world=False,
    )
