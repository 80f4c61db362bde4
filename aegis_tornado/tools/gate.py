"""The access policy at the tools' door: the repository gate every Gitea call goes through,
and the refusal of sensitive paths.

The gate: a denied repository is indistinguishable from a missing one, in its answer *and* in
its cost.

A tool never asks "is this repository allowed?" and branches on it: that branch would answer
sooner (no Gitea round trip) and in other words (argument checks skipped) than the path a
missing repository takes. Instead every call naming a repository goes through
:class:`RepositoryGate`, which sends a call about a denied repository to :data:`DECOY_OWNER`/
:data:`DECOY_REPO`, a name no Gitea account can hold. Gitea answers 404, exactly as for a
missing repository, and the tool goes on down the very code a missing repository takes: same
argument checks, same Gitea round trips, same message. Gitea never hears the denied name.

The call is still audited as ``denied`` (reason ``repo_policy``): :func:`denial_scope` marks
the tool call in which the gate substituted a name, and ``make_tool`` turns the call's error
into a :class:`~aegis_tornado.mcp.registry.ToolDenied` with the same message.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Awaitable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from ..gitea import MAX_PAGE_LIMIT, GiteaClient, GiteaError, GiteaNotFound, Page, TreePage
from ..mcp.registry import ToolDenied
from .policy import PathPolicy, RepoPolicy
from .validation import OWNER_MAX_LENGTH, escape_for_message

T = TypeVar("T")

__all__ = [
    "DECOY_OWNER",
    "DECOY_REPO",
    "DenialScope",
    "RepositoryGate",
    "denial_scope",
    "refuse_sensitive_path",
]

#: A user or organisation name Gitea refuses twice over: longer than its ``MaxSize(40)``
#: and with two '-' in a row (``IsValidUsername``), so no repository can live under it even
#: on an instance whose accounts came from LDAP or an older release. ``validate_owner``
#: refuses it too. Were it ever answered, the gate drops the answer anyway.
DECOY_OWNER = ("aegis--no--such--owner--" * 2)[: OWNER_MAX_LENGTH + 1]
DECOY_REPO = "aegis--no--such--repository"


class DenialScope:
    """What one tool call learnt about the policy: did it name a denied repository?"""

    __slots__ = ("denied",)

    def __init__(self) -> None:
        self.denied = False


_SCOPE: contextvars.ContextVar[DenialScope | None] = contextvars.ContextVar(
    "aegis_denial_scope", default=None
)


@contextlib.contextmanager
def denial_scope() -> Iterator[DenialScope]:
    """The scope of one tool call. Tasks the call starts (``asyncio.gather``) copy the
    context, so they share the scope object and report into it."""
    scope = DenialScope()
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def _mark_denied() -> None:
    scope = _SCOPE.get()
    if scope is not None:
        scope.denied = True


class RepositoryGate:
    """:class:`GiteaClient`'s read calls, with every repository name put through the policy.

    A denied ``owner``/``repo`` is replaced by the decoy before the call is built. Should Gitea
    ever answer a decoy call with anything but a failure, the answer is dropped for a 404:
    nothing about a denied repository can come back, whatever Gitea does.
    """

    def __init__(self, client: GiteaClient, repos: RepoPolicy) -> None:
        self._client = client
        self._repos = repos

    @property
    def base_url(self) -> str:
        return self._client.base_url

    @property
    def upstream(self) -> GiteaClient:
        """The client itself, for calls that name no repository."""
        return self._client

    def _route(self, path: dict[str, Any]) -> tuple[str, str] | None:
        """Replace a denied repository in ``path`` by the decoy; the names it replaced."""
        if "owner" not in path or "repo" not in path:
            return None
        owner, repo = path["owner"], path["repo"]
        if self._repos.allows(owner, repo):
            return None
        _mark_denied()
        path["owner"], path["repo"] = DECOY_OWNER, DECOY_REPO
        return str(owner), str(repo)

    async def _call(self, call: Awaitable[T], endpoint: str, named: tuple[str, str] | None) -> T:
        if named is None:
            return await call
        try:
            await call
        except GiteaError as error:
            raise _as_if_named(error, *named) from None
        # A decoy cannot exist; an answer for it is Gitea misbehaving and is never passed on.
        raise GiteaNotFound(f"Not found: {endpoint}", status=404, path=endpoint)

    async def get_json(
        self, endpoint: str, *, params: Mapping[str, Any] | None = None, **path: Any
    ) -> Any:
        named = self._route(path)
        return await self._call(
            self._client.get_json(endpoint, params=params, **path), endpoint, named
        )

    async def get_page(
        self,
        endpoint: str,
        *,
        page: int = 1,
        limit: int = MAX_PAGE_LIMIT,
        params: Mapping[str, Any] | None = None,
        **path: Any,
    ) -> Page:
        named = self._route(path)
        call = self._client.get_page(endpoint, page=page, limit=limit, params=params, **path)
        return await self._call(call, endpoint, named)

    async def get_text(
        self, endpoint: str, *, params: Mapping[str, Any] | None = None, **path: Any
    ) -> str:
        named = self._route(path)
        return await self._call(
            self._client.get_text(endpoint, params=params, **path), endpoint, named
        )

    async def get_tree(self, owner: str, repo: str, sha: str, **options: Any) -> TreePage:
        path = {"owner": owner, "repo": repo}
        named = self._route(path)
        return await self._call(
            self._client.get_tree(path["owner"], path["repo"], sha, **options), "tree", named
        )


def _as_if_named(error: GiteaError, owner: str, repo: str) -> GiteaError:
    """``error`` (from a decoy call) reading as if the call had named ``owner``/``repo``.

    Gitea's failures quote the API path ("unavailable: HTTP 503 for /repos/o/r/..."): a denied
    repository's must quote its own name, exactly as a missing repository's would."""
    quoted = f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"
    replacements = (
        (f"/repos/{DECOY_OWNER}/{DECOY_REPO}", quoted),
        (f"{DECOY_OWNER}/{DECOY_REPO}", f"{owner}/{repo}"),
        (DECOY_OWNER, owner),
        (DECOY_REPO, repo),
    )
    for decoy, real in replacements:
        error.message = error.message.replace(decoy, real)
        if error.path is not None:
            error.path = error.path.replace(decoy, real)
    error.args = (error.message,)
    return error


def refuse_sensitive_path(paths: PathPolicy, path: str) -> None:
    """``ToolDenied`` when ``path`` is sensitive: every tool calls this before it asks Gitea
    anything about the path. The path is quoted escaped, so a hidden character shows."""
    pattern = paths.blocked_reason(path) if path else None
    if pattern is not None:
        raise ToolDenied(
            f"Blocked by policy: {escape_for_message(path)} matches the sensitive-file "
            f"pattern '{pattern}'. Its content is never returned; do not retry it.",
            reason="sensitive_path",
        )
