"""A Tornado application that answers like Gitea 1.27's REST API (GET only) for the sample world.

Behaviour emulated (see ``shared/reference/gitea-api.md``):

* Auth: ``Authorization: token|Bearer <T>`` or Basic (password = token); the deprecated
  ``?token=``/``?access_token=`` too (recorded, so tests can assert the client never uses it).
  No credentials = anonymous (public repositories only); an unknown token = 401; a token without
  the route's scope = 403. Repositories a caller may not see are 404, never 403.
* Paging: ``page`` (<=0 -> 1), ``limit`` (<=0 -> 30, >50 -> 50); ``X-Total-Count`` and ``Link``
  (next, last, first, prev; absolute URLs from the request host; joined by "," without spaces);
  commit lists and PR files add ``X-Page``, ``X-PerPage``, ``X-PageCount``, ``X-HasMore``, ``X-Total``.
* Errors: ``{"message": ..., "url": "<root>/api/swagger"}`` (404s add ``errors`` as 1.25 does).
* Renamed repository: ``northwind/beacon`` answers 307 to ``northwind/lighthouse``.

The :class:`GiteaDouble` object (``app.double``) holds the dataset, the fault list
(``app.faults``), the request record and concurrency counters.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import structlog
from tornado import httputil, iostream, web
from tornado.http1connection import HTTP1Connection

from . import operations, render
from .dataset import DEMO_TOKEN, Dataset, Issue, Repo, build_dataset
from .faults import BODY_KINDS, Fault, Faults, mangle
from .oauth2 import OAuthControl, OAuthProvider, oauth_routes
from .render import Ctx

__all__ = ["GiteaDouble", "RequestRecord", "make_double_app"]

DEFAULT_PAGING_NUM = 30
MAX_RESPONSE_ITEMS = 50
DEFAULT_TREES_PER_PAGE = 1000
RENAMED = {("northwind", "beacon"): ("northwind", "lighthouse")}
_AUTH_RE = re.compile(r"^\s*(token|bearer)\s+(\S+)\s*$", re.IGNORECASE)
_BASIC_RE = re.compile(r"^\s*basic\s+(\S+)\s*$", re.IGNORECASE)
_BAD_REF_RE = re.compile(r"(\.\.|[\s~^:?*\[\\]|@\{)")
JSON_TYPE = "application/json;charset=utf-8"
log = structlog.get_logger("aegis.gitea_double")


def _log_request(handler: web.RequestHandler) -> None:
    """One debug line per request on its own logger, so that a double embedded in the product
    (demo mode) never mixes into the product's ``tornado.access`` lines. No query, no headers."""
    log.debug(
        "gitea_double.request",
        method=handler.request.method,
        path=handler.request.path,
        status=handler.get_status(),
        duration_ms=round(handler.request.request_time() * 1000, 1),
    )


@dataclass
class RequestRecord:
    """One request the double received (control-endpoint calls are not recorded)."""

    method: str
    path: str  # as received, still percent-encoded, e.g. /api/v1/repos/o/r/contents/a%20b
    query: list[tuple[str, str]]
    auth: str | None  # "header", "query" or None (anonymous)
    user: str | None = None  # the login the credentials resolved to
    status: int | None = None  # None while in flight; 0 when the double dropped the connection
    duration_ms: float | None = None
    started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def api_path(self) -> str:
        """The path relative to ``/api/v1`` (and to any sub-path prefix)."""
        head, sep, tail = self.path.partition("/api/v1")
        return tail if sep else self.path

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        data["query"] = [list(pair) for pair in self.query]
        return data


class GiteaDouble:
    """State shared by the handlers of one double application."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.faults = Faults()
        #: Gitea's OAuth2 provider: apps, grants, codes and the OAuth tokens it minted.
        self.oauth = OAuthProvider()
        self.requests: list[RequestRecord] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def clear_requests(self) -> None:
        self.requests.clear()

    def reset_stats(self) -> None:
        self.max_in_flight = self.in_flight

    def begin(self, record: RequestRecord) -> None:
        self.requests.append(record)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self, record: RequestRecord, status: int) -> None:
        if record.status is not None:
            return
        record.status = status
        record.duration_ms = round((time.monotonic() - record.started) * 1000, 1)
        self.in_flight -= 1


class _Done(Exception):
    """The handler already wrote (or dropped) the answer."""


# ------------------------------------------------------------------------------------------
# Base handler
# ------------------------------------------------------------------------------------------


class ApiHandler(web.RequestHandler):
    """Records, injects faults, authenticates, and speaks Gitea's JSON error dialect."""

    scope: str | None = "read:repository"  # the token scope this route needs (None: public)
    require_user = False

    def initialize(self, double: GiteaDouble) -> None:
        self.double = double
        self.ds = double.dataset
        self.viewer: str | None = None
        self.record: RequestRecord | None = None
        self._body_fault: Fault | None = None
        self._closed = asyncio.Event()

    # -- plumbing -----------------------------------------------------------------------------

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", JSON_TYPE)
        self.set_header("Cache-Control", "max-age=0, private, must-revalidate, no-transform")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "SAMEORIGIN")

    def compute_etag(self) -> None:  # Gitea's API sends no ETags on these routes
        return None

    @property
    def root(self) -> str:
        """Gitea's ROOT_URL as this request sees it (scheme, host, sub-path prefix, "/")."""
        return (
            f"{self.request.protocol}://{self.request.host}{self.settings.get('gitea_prefix', '')}/"
        )

    @property
    def ctx(self) -> Ctx:
        return Ctx(self.root, self.ds, self.viewer)

    def on_connection_close(self) -> None:
        # The request ends for in-flight counting when its client hangs up, not when the handler
        # next runs: a client whose worker thread sends its next request on a new connection at
        # once would otherwise be counted with one request too many (max_in_flight).
        if self.record is not None:
            self.double.end(self.record, 0)
        self._closed.set()

    def on_finish(self) -> None:
        if self.record is not None:
            self.double.end(self.record, self.get_status())

    def check_xsrf_cookie(self) -> None:  # an API: no cookies
        return None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = self._reason if status_code < 500 else ""
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(
            json.dumps(
                {"message": message, "url": self.root + "api/swagger"}, separators=(",", ":")
            )
        )

    def fail(self, status: int, message: str, errors: list[str] | None = None) -> None:
        body: dict[str, Any] = {}
        if errors is not None:
            body["errors"] = errors
        body["message"] = message
        body["url"] = self.root + "api/swagger"
        self.set_status(status)
        self.finish(json.dumps(body, separators=(",", ":")))
        raise web.Finish()

    def not_found(self, detail: str | None = None) -> None:
        self.fail(404, "not found", [detail] if detail else [])

    def _drop_connection(self) -> None:
        """Close the TCP connection without (finishing) an answer."""
        if self.record is not None:
            self.double.end(self.record, 0)
        self._finished = True  # Tornado must not try to write to the detached stream
        connection = self.request.connection
        if not isinstance(connection, HTTP1Connection):  # already let go of
            return
        try:
            stream = connection.detach()
        except Exception:  # already detached or closed
            return
        stream.close()

    # -- request lifecycle --------------------------------------------------------------------

    async def prepare(self) -> None:
        auth_kind = self._auth_kind()
        self.record = RequestRecord(
            self.request.method or "",
            self.request.path,
            parse_qsl(self.request.query, keep_blank_values=True),
            auth_kind,
        )
        self.double.begin(self.record)
        await self._apply_faults()
        self._authenticate(auth_kind)
        self.record.user = self.viewer

    def _auth_kind(self) -> str | None:
        if self.request.headers.get("Authorization"):
            return "header"
        if self.get_query_argument("token", None) or self.get_query_argument("access_token", None):
            return "query"
        return None

    def _authenticate(self, auth_kind: str | None) -> None:
        token: str | None = None
        if auth_kind == "header":
            value = self.request.headers["Authorization"]
            match = _AUTH_RE.match(value)
            basic = _BASIC_RE.match(value)
            if match:
                token = match.group(2)
            elif basic:
                try:
                    _user, _, token = base64.b64decode(basic.group(1)).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    token = None
            if not token:
                self.fail(401, "invalid username, password or token")
        elif auth_kind == "query":
            token = self.get_query_argument("token", None) or self.get_query_argument(
                "access_token", None
            )
        scopes: frozenset[str] = frozenset()
        if token is not None:
            found = None
            oauth = self.double.oauth.resolve_access_token(token)
            if oauth is False:  # expired, or its grant was revoked
                self.fail(401, "invalid username, password or token")
            if isinstance(oauth, tuple):
                found = oauth
            for known, (login, known_scopes) in self.ds.tokens.items():
                if hmac.compare_digest(known.encode(), token.encode()):
                    found = (login, known_scopes)
            if found is None:
                self.fail(401, "invalid username, password or token")
            self.viewer, scopes = found  # type: ignore[misc]
        if self.viewer is None:
            if self.require_user:
                self.fail(401, "token is required")
            return
        if self.scope and not _has_scope(scopes, self.scope):
            self.fail(
                403,
                f"token does not have at least one of required scope(s), required=[{self.scope}], "
                f"token scope={','.join(sorted(scopes))}",
            )

    async def _apply_faults(self) -> None:
        for fault in self.double.faults.take(self.request.path):
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "hang":
                release = self.double.faults.release_event()
                waiters = [
                    asyncio.ensure_future(self._closed.wait()),
                    asyncio.ensure_future(release.wait()),
                ]
                _done, pending = await asyncio.wait(
                    waiters, timeout=fault.delay, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
                if self._closed.is_set():
                    raise web.Finish()
            elif fault.kind == "disconnect":
                self._drop_connection()
                raise web.Finish()
            elif fault.kind == "status":
                self.set_status(fault.status or 500)
                for name, value in (fault.headers or {}).items():
                    self.set_header(name, value)
                body = (
                    fault.body
                    if fault.body is not None
                    else json.dumps({"message": "", "url": self.root + "api/swagger"})
                )
                self.finish(body)
                raise web.Finish()
            elif fault.kind == "redirect":
                self.set_status(fault.status or 307)
                self.set_header("Location", fault.location or "/")
                self.finish()
                raise web.Finish()
            elif fault.kind in ("huge", "drip"):
                await self._send_filler(fault)
                raise web.Finish()
            elif fault.kind in BODY_KINDS:
                self._body_fault = fault

    async def _send_filler(self, fault: Fault) -> None:
        """A JSON array of about ``fault.size`` bytes: fast in 4 KiB pieces (huge), or 1 KiB per
        ``fault.delay`` seconds (drip)."""
        drip = fault.kind == "drip"
        piece = b'{"filler":"' + b"x" * (1000 if drip else 4000) + b'"},'
        count = max(1, (fault.size - 2) // len(piece))
        if not fault.chunked:
            self.set_header("Content-Length", str(count * len(piece) + 1))
        try:
            self.write(b"[")
            for i in range(count):
                self.write(piece if i < count - 1 else piece[:-1])
                if drip:
                    await self.flush()
                    await asyncio.sleep(fault.delay)
                elif i % 16 == 15:
                    await self.flush()
            self.write(b"]")
            await self.flush()
            self.finish()
        except iostream.StreamClosedError:
            self._drop_connection()

    # -- answers ------------------------------------------------------------------------------

    def send_json(self, data: Any, status: int = 200) -> None:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        fault = self._body_fault
        self.set_status(status)
        if fault is not None and fault.kind == "mangle":
            body = json.dumps(
                mangle(data, fault.seed), ensure_ascii=False, separators=(",", ":")
            ).encode()
        elif fault is not None and fault.kind == "malformed":
            body = body[:-1] + b",}"
        elif fault is not None and fault.kind == "truncated":
            body = body[: max(1, len(body) // 2)]
        elif fault is not None and fault.kind == "cut":
            # Promise the whole body, send half, then hang up once that half is on the wire.
            self._finished = True  # from here on Tornado must not write anything itself
            self.set_header("Content-Length", str(len(body)))
            connection = self.request.connection
            assert connection is not None  # a request being answered has its connection
            connection.write_headers(
                httputil.ResponseStartLine(
                    "HTTP/1.1", status, httputil.responses.get(status, "OK")
                ),
                self._headers,
            )
            sent = connection.write(body[: len(body) // 2])
            sent.add_done_callback(lambda _f: self._drop_connection())
            raise web.Finish()
        self.finish(body)

    def send_text(self, text: str) -> None:
        self.set_header("Content-Type", "text/plain;charset=utf-8")
        self.finish(text.encode())

    # -- query helpers ------------------------------------------------------------------------

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.get_query_argument(name, default)

    def int_arg(self, name: str) -> int:
        try:
            return int(self.get_query_argument(name, "0") or 0)
        except ValueError:
            return 0

    def bool_arg(self, name: str, default: bool | None = None) -> bool | None:
        value = self.get_query_argument(name, None)
        if value is None or value == "":
            return default
        return value.lower() in ("1", "true", "t", "yes", "on")

    def list_args(self, name: str) -> list[str]:
        out: list[str] = []
        for value in self.get_query_arguments(name):
            out += [v.strip() for v in value.split(",") if v.strip()]
        return out

    def paging(self) -> tuple[int, int]:
        page = self.int_arg("page")
        limit = self.int_arg("limit")
        page = page if page > 0 else 1
        limit = DEFAULT_PAGING_NUM if limit <= 0 else min(limit, MAX_RESPONSE_ITEMS)
        return page, limit

    def paginate(self, items: Sequence[Any], *, commit_headers: bool = False) -> list[Any]:
        page, limit = self.paging()
        total = len(items)
        self.set_link_header(total, limit, page)
        self.set_header("X-Total-Count", str(total))
        expose = ["X-Total-Count", "Link"]
        if commit_headers:
            pages = max(1, math.ceil(total / limit))
            self.set_header("X-Page", str(page))
            self.set_header("X-PerPage", str(limit))
            self.set_header("X-Total", str(total))
            self.set_header("X-PageCount", str(pages))
            self.set_header("X-HasMore", "true" if page < pages else "false")
            expose += ["X-PerPage", "X-Total", "X-PageCount", "X-HasMore", "X-Page"]
        self.set_header("Access-Control-Expose-Headers", ", ".join(expose))
        return list(items[(page - 1) * limit : page * limit])

    def set_link_header(self, total: int, limit: int, page: int) -> None:
        pages = max(1, math.ceil(total / limit))
        current = min(page, pages)
        query = parse_qsl(self.request.query, keep_blank_values=True)

        def link(target: int, rel: str) -> str:
            params = [(k, v) for k, v in query if k != "page"] + [("page", str(target))]
            params.sort(key=lambda kv: kv[0])  # Go's url.Values.Encode sorts by key
            host = f"{self.request.protocol}://{self.request.host}"
            return f'<{host}{self.request.path}?{urlencode(params)}>; rel="{rel}"'

        links = []
        if current < pages:
            links.append(link(current + 1, "next"))
            links.append(link(pages, "last"))
        if current > 1:
            links.append(link(1, "first"))
            links.append(link(current - 1, "prev"))
        if links:
            self.set_header("Link", ",".join(links))

    # -- repository helpers -------------------------------------------------------------------

    def load_repo(self, owner: str, name: str) -> Repo:
        repo = self.ds.repo(owner, name)
        if repo is None and (owner.lower(), name.lower()) in RENAMED:
            new_owner, new_name = RENAMED[(owner.lower(), name.lower())]
            target = self.ds.repo(new_owner, new_name)
            if target is not None and self.ds.access(target, self.viewer) is not None:
                prefix = self.settings.get("gitea_prefix", "")
                old = f"{prefix}/api/v1/repos/{quote(owner, safe='')}/{quote(name, safe='')}"
                new = f"{prefix}/api/v1/repos/{target.owner}/{target.name}"
                location = new + self.request.path[len(old) :]
                if self.request.query:
                    location += "?" + self.request.query
                self.set_status(307)
                self.set_header("Location", location)
                self.finish()
                raise web.Finish()
        if repo is None or self.ds.access(repo, self.viewer) is None:
            self.not_found()
        assert repo is not None
        return repo

    def resolve_ref(self, repo: Repo, ref: str | None) -> tuple[str, str]:
        """(ref name as given or the default branch, commit sha), 404 when unknown."""
        if repo.empty:
            self.not_found(f"object does not exist [id: {ref or repo.default_branch}, rel_path: ]")
        ref = ref or repo.default_branch
        sha = repo.git.resolve(ref)
        if sha is None:
            self.not_found(f"object does not exist [id: {ref}, rel_path: ]")
        assert sha is not None
        return ref, sha

    def load_issue(self, repo: Repo, index: str) -> Issue:
        issue = repo.issue(int(index))
        if issue is None:
            self.not_found(f"issue does not exist [id: 0, repo_id: {repo.id}, index: {index}]")
        assert issue is not None
        return issue


def _has_scope(scopes: frozenset[str], needed: str) -> bool:
    if "all" in scopes or needed in scopes:
        return True
    category = needed.split(":", 1)[1]
    return f"write:{category}" in scopes


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------
# Routes
# ------------------------------------------------------------------------------------------


class VersionHandler(ApiHandler):
    scope = None

    async def get(self) -> None:
        """GET /version"""
        self.send_json({"version": self.ds.version})


class UserHandler(ApiHandler):
    scope = "read:user"
    require_user = True

    async def get(self) -> None:
        """GET /user: the token's account."""
        user = self.ds.user(self.viewer)
        assert user is not None
        self.send_json(render.user_json(self.ctx, user))


_REPO_SORTS = {
    "alpha": lambda r: r.name.lower(),
    "created": lambda r: r.created,
    "updated": lambda r: r.updated,
    "size": lambda r: r.size_kib,
    "git_size": lambda r: r.size_kib,
    "lfs_size": lambda r: 0,
    "stars": lambda r: r.stars,
    "forks": lambda r: r.forks,
    "id": lambda r: r.id,
}


class RepoSearchHandler(ApiHandler):
    async def get(self) -> None:
        """GET /repos/search: repositories visible to the caller, wrapped as {ok, data}."""
        sort = self.arg("sort") or "alpha"
        order = (self.arg("order") or "asc").lower()
        if sort not in _REPO_SORTS:
            self.fail(422, f'Invalid sort mode: "{sort}"')
        if order not in ("asc", "desc"):
            self.fail(422, f'Invalid sort order: "{order}"')
        repos = self.ds.visible_repos(self.viewer)
        q = (self.arg("q") or "").lower()
        if q and self.bool_arg("topic", False):
            repos = [r for r in repos if q in [t.lower() for t in r.topics]]
        elif q:
            with_desc = self.bool_arg("includeDesc", False)
            repos = [
                r
                for r in repos
                if q in r.name.lower() or (with_desc and q in r.description.lower())
            ]
        uid = self.int_arg("uid")
        if uid:
            owner = next((u for u in self.ds.users.values() if u.id == uid), None)
            if owner is None:
                self.fail(422, f"user does not exist [uid: {uid}]")
            assert owner is not None
            exclusive = self.bool_arg("exclusive", False)
            repos = [
                r
                for r in repos
                if r.owner == owner.login or (not exclusive and owner.login in r.collaborators)
            ]
        if self.bool_arg("private", True) is False:
            repos = [r for r in repos if not r.private]
        for name, attr in (("is_private", "private"), ("archived", "archived")):
            wanted = self.bool_arg(name)
            if wanted is not None:
                repos = [r for r in repos if getattr(r, attr) is wanted]
        if self.bool_arg("template") is True:
            repos = []
        mode = self.arg("mode")
        if mode in ("fork", "mirror"):
            repos = []
        elif mode == "collaborative":
            repos = [r for r in repos if r.owner != self.viewer]
        repos = sorted(repos, key=lambda r: r.id)
        repos = sorted(repos, key=_REPO_SORTS[sort], reverse=(order == "desc"))
        page = self.paginate(repos)
        self.send_json({"ok": True, "data": [render.repo_json(self.ctx, r) for r in page]})


class _IssueFilter:
    """Gitea's issue list filters shared by /repos/{o}/{r}/issues and /repos/issues/search."""

    @staticmethod
    def apply(handler: ApiHandler, repo: Repo, issues: Iterable[Issue]) -> list[Issue]:
        state = (handler.arg("state") or "open").lower()
        kind = (handler.arg("type") or "").lower()
        labels = set(handler.list_args("labels"))
        milestones = set(handler.list_args("milestones"))
        q = (handler.arg("q") or "").lower()
        since, before = _parse_time(handler.arg("since")), _parse_time(handler.arg("before"))
        created_by, assigned_by = handler.arg("created_by"), handler.arg("assigned_by")
        out = []
        for issue in issues:
            if state in ("open", "closed") and issue.state != state:
                continue
            if kind == "issues" and issue.is_pull or kind == "pulls" and not issue.is_pull:
                continue
            if labels and not labels <= {label.name for label in issue.labels}:
                continue
            if milestones and not (
                issue.milestone
                and (issue.milestone.title in milestones or str(issue.milestone.id) in milestones)
            ):
                continue
            if q and q not in issue.title.lower() and q not in issue.body.lower():
                continue
            if since and issue.updated_at < since or before and issue.updated_at > before:
                continue
            if (
                created_by
                and issue.user != created_by
                or assigned_by
                and assigned_by not in issue.assignees
            ):
                continue
            out.append(issue)
        return sorted(out, key=lambda i: i.created, reverse=True)


class IssueSearchHandler(ApiHandler):
    scope = "read:issue"

    async def get(self) -> None:
        """GET /repos/issues/search: issues and pulls across every repository the caller sees."""
        owner = self.arg("owner")
        found: list[tuple[Repo, Issue]] = []
        for repo in self.ds.visible_repos(self.viewer):
            if owner and repo.owner.lower() != owner.lower():
                continue
            for issue in _IssueFilter.apply(self, repo, repo.issues):
                if self.bool_arg("created") and issue.user != self.viewer:
                    continue
                if self.bool_arg("assigned") and self.viewer not in issue.assignees:
                    continue
                found.append((repo, issue))
        found.sort(key=lambda pair: pair[1].updated_at, reverse=True)
        page = self.paginate(found)
        self.send_json([render.issue_json(self.ctx, repo, issue) for repo, issue in page])


class RepoHandler(ApiHandler):
    async def get(self, owner: str, name: str) -> None:
        """GET /repos/{owner}/{repo}"""
        self.send_json(render.repo_json(self.ctx, self.load_repo(owner, name)))


class BranchesHandler(ApiHandler):
    async def get(self, owner: str, name: str) -> None:
        """GET /repos/{owner}/{repo}/branches (default branch first, then by name)"""
        repo = self.load_repo(owner, name)
        names = sorted(repo.git.branches, key=lambda b: (b != repo.default_branch, b))
        q = (self.arg("q") or "").lower()
        if q:
            names = [b for b in names if q in b.lower()]
        page = self.paginate(names)
        self.send_json([render.branch_json(self.ctx, repo, b) for b in page])


class TagsHandler(ApiHandler):
    async def get(self, owner: str, name: str) -> None:
        """GET /repos/{owner}/{repo}/tags (newest first)"""
        repo = self.load_repo(owner, name)
        names = sorted(
            repo.git.tags, key=lambda t: repo.git.commits[repo.git.tags[t][0]].when, reverse=True
        )
        page = self.paginate(names)
        self.send_json([render.tag_json(self.ctx, repo, t) for t in page])


class TreeHandler(ApiHandler):
    async def get(self, owner: str, name: str, sha: str) -> None:
        """GET /repos/{owner}/{repo}/git/trees/{sha} (commit, tree, branch or tag)"""
        repo = self.load_repo(owner, name)
        git = repo.git
        if repo.empty:
            self.not_found(f"object does not exist [id: {sha}, rel_path: ]")
        if sha in git.trees:
            tree_sha = sha
        else:
            commit_sha = git.resolve(sha)
            if commit_sha is None:
                # Gitea answers a tree lookup failure with 400 and the git error.
                self.fail(400, f"object does not exist [id: {sha}, rel_path: ]")
            assert commit_sha is not None
            tree_sha = git.commits[commit_sha].tree
        entries = list(git.walk(tree_sha, bool(self.bool_arg("recursive", False))))
        page = max(1, self.int_arg("page"))
        per_page = self.int_arg("per_page")
        if per_page <= 0 or per_page > DEFAULT_TREES_PER_PAGE:
            per_page = DEFAULT_TREES_PER_PAGE
        start = (page - 1) * per_page
        chunk = entries[start : start + per_page]
        self.send_json(
            {
                "sha": tree_sha,
                "url": f"{self.ctx.api}repos/{repo.full_name}/git/trees/{tree_sha}",
                "tree": [render.tree_entry_json(self.ctx, repo, p, e) for p, e in chunk]
                if chunk
                else None,
                "truncated": start + per_page < len(entries),
                "page": page,
                "total_count": len(entries),
            }
        )


class ContentsHandler(ApiHandler):
    async def get(self, owner: str, name: str, filepath: str = "") -> None:
        """GET /repos/{owner}/{repo}/contents[/{filepath}]: a file (base64) or a directory listing"""
        repo = self.load_repo(owner, name)
        ref, sha = self.resolve_ref(repo, self.arg("ref"))
        path = filepath.strip("/")
        entry = repo.git.lookup(sha, path)
        if entry is None:
            self.not_found(f"object does not exist [id: {sha}, rel_path: {path}]")
        assert entry is not None
        ctx = self.ctx
        if entry.type == "tree":
            listing = [
                render.contents_json(
                    ctx,
                    repo,
                    ref,
                    sha,
                    f"{path}/{child.name}".lstrip("/"),
                    child,
                    with_content=False,
                )
                for child in repo.git.trees[entry.sha]
            ]
            self.send_json(listing)
        else:
            self.send_json(
                render.contents_json(ctx, repo, ref, sha, path, entry, with_content=True)
            )


class CommitsHandler(ApiHandler):
    async def get(self, owner: str, name: str) -> None:
        """GET /repos/{owner}/{repo}/commits (first-parent history of sha, newest first)"""
        repo = self.load_repo(owner, name)
        if repo.empty:
            self.fail(409, "Git Repository is empty.")
        _ref, sha = self.resolve_ref(repo, self.arg("sha"))
        history = repo.git.log(sha)
        not_ref = self.arg("not")
        if not_ref:
            excluded = repo.git.resolve(not_ref)
            hidden = {c.sha for c in repo.git.log(excluded)} if excluded else set()
            history = [c for c in history if c.sha not in hidden]
        path = (self.arg("path") or "").strip("/")
        if path:
            history = [c for c in history if _touches(repo, c.sha, path)]
        since, until = _parse_time(self.arg("since")), _parse_time(self.arg("until"))
        history = [
            c for c in history if (not since or c.when >= since) and (not until or c.when <= until)
        ]
        page = self.paginate(history, commit_headers=True)
        flags = {k: bool(self.bool_arg(k, True)) for k in ("stat", "files", "verification")}
        self.send_json([render.commit_json(self.ctx, repo, c, **flags) for c in page])


def _touches(repo: Repo, sha: str, path: str) -> bool:
    commit = repo.git.commits[sha]
    parent = commit.parents[0] if commit.parents else None
    after = repo.git.lookup(sha, path)
    before = repo.git.lookup(parent, path) if parent else None
    return (before.sha if before else None) != (after.sha if after else None)


class CommitHandler(ApiHandler):
    async def get(self, owner: str, name: str, sha: str) -> None:
        """GET /repos/{owner}/{repo}/git/commits/{sha}"""
        repo = self.load_repo(owner, name)
        if _BAD_REF_RE.search(sha):
            self.fail(422, f"no valid ref or sha: {sha}")
        _ref, commit_sha = self.resolve_ref(repo, sha)
        flags = {k: bool(self.bool_arg(k, True)) for k in ("stat", "files", "verification")}
        self.send_json(render.commit_json(self.ctx, repo, repo.git.commits[commit_sha], **flags))


class CommitDiffHandler(ApiHandler):
    async def get(self, owner: str, name: str, sha: str, diff_type: str) -> None:
        """GET /repos/{owner}/{repo}/git/commits/{sha}.{diff|patch} (text/plain)"""
        repo = self.load_repo(owner, name)
        _ref, commit_sha = self.resolve_ref(repo, sha)
        commit = repo.git.commits[commit_sha]
        if diff_type == "patch":
            self.send_text(render.commit_patch(repo, commit))
        else:
            self.send_text(repo.git.diff(commit.parents[0] if commit.parents else None, commit.sha))


class IssuesHandler(ApiHandler):
    scope = "read:issue"

    async def get(self, owner: str, name: str) -> None:
        """GET /repos/{owner}/{repo}/issues (pull requests included unless type=issues)"""
        repo = self.load_repo(owner, name)
        page = self.paginate(_IssueFilter.apply(self, repo, repo.issues))
        self.send_json([render.issue_json(self.ctx, repo, i) for i in page])


class IssueHandler(ApiHandler):
    scope = "read:issue"

    async def get(self, owner: str, name: str, index: str) -> None:
        """GET /repos/{owner}/{repo}/issues/{index} (a pull request's number works too)"""
        repo = self.load_repo(owner, name)
        self.send_json(render.issue_json(self.ctx, repo, self.load_issue(repo, index)))


class IssueCommentsHandler(ApiHandler):
    scope = "read:issue"

    async def get(self, owner: str, name: str, index: str) -> None:
        """GET /repos/{owner}/{repo}/issues/{index}/comments (not paginated; since/before)"""
        repo = self.load_repo(owner, name)
        issue = self.load_issue(repo, index)
        since, before = _parse_time(self.arg("since")), _parse_time(self.arg("before"))
        comments = [
            c
            for c in issue.comments
            if (not since or c.created >= since) and (not before or c.created <= before)
        ]
        self.send_json([render.comment_json(self.ctx, repo, issue, c) for c in comments])


_PULL_SORTS: dict[str, tuple[Callable[[Issue], Any], bool]] = {
    "oldest": (lambda i: i.created, False),
    "recentupdate": (lambda i: i.updated_at, True),
    "recentclose": (lambda i: i.closed_at or datetime.min.replace(tzinfo=i.created.tzinfo), True),
    "leastupdate": (lambda i: i.updated_at, False),
    "mostcomment": (lambda i: len(i.comments), True),
    "leastcomment": (lambda i: len(i.comments), False),
    "priority": (lambda i: i.created, True),
}


class PullsHandler(ApiHandler):
    async def get(self, owner: str, name: str) -> None:
        """GET /repos/{owner}/{repo}/pulls"""
        repo = self.load_repo(owner, name)
        state = (self.arg("state") or "open").lower()
        sort = self.arg("sort")
        if sort and sort not in _PULL_SORTS:
            self.fail(422, f'Invalid sort: "{sort}"')
        label_ids = {int(v) for v in self.list_args("labels") if v.isdigit()}
        milestone = self.int_arg("milestone")
        poster, base = self.arg("poster"), self.arg("base_branch")
        pulls = [
            i
            for i in repo.issues
            if i.pull
            and (state == "all" or i.state == state)
            and (not label_ids or label_ids <= {label.id for label in i.labels})
            and (not milestone or (i.milestone and i.milestone.id == milestone))
            and (not poster or i.user == poster)
            and (not base or i.pull.base_branch == base)
        ]
        key, reverse = _PULL_SORTS.get(sort or "", (lambda i: i.created, True))
        pulls.sort(key=key, reverse=reverse)
        page = self.paginate(pulls)
        self.send_json([render.pull_json(self.ctx, repo, i) for i in page])


class PullHandler(ApiHandler):
    def load_pull(self, owner: str, name: str, index: str) -> tuple[Repo, Issue]:
        repo = self.load_repo(owner, name)
        issue = repo.issue(int(index))
        if issue is None or not issue.is_pull:
            self.not_found(
                f"pull request does not exist [id: 0, issue_id: 0, head_repo_id: 0, base_repo_id: {repo.id}, head_branch: , base_branch: ]"
            )
        assert issue is not None
        return repo, issue

    async def get(self, owner: str, name: str, index: str) -> None:
        """GET /repos/{owner}/{repo}/pulls/{index}"""
        repo, issue = self.load_pull(owner, name, index)
        self.send_json(render.pull_json(self.ctx, repo, issue))


class PullFilesHandler(PullHandler):
    async def get(self, owner: str, name: str, index: str) -> None:
        """GET /repos/{owner}/{repo}/pulls/{index}/files"""
        repo, issue = self.load_pull(owner, name, index)
        assert issue.pull is not None
        changes = repo.git.changes(issue.pull.merge_base, issue.pull.head_sha)
        page = self.paginate(changes, commit_headers=True)
        self.send_json(
            [render.changed_file_json(self.ctx, repo, issue.pull.head_sha, c) for c in page]
        )


class PullDiffHandler(PullHandler):
    async def get(self, owner: str, name: str, index: str, diff_type: str) -> None:  # type: ignore[override]
        """GET /repos/{owner}/{repo}/pulls/{index}.{diff|patch} (text/plain)"""
        repo, issue = self.load_pull(owner, name, index)
        pull = issue.pull
        assert pull is not None
        if diff_type == "patch":
            commits = [
                c
                for c in repo.git.log(pull.head_sha)
                if c.sha not in {x.sha for x in repo.git.log(pull.merge_base)}
            ]
            self.send_text("".join(render.commit_patch(repo, c) for c in reversed(commits)))
        else:
            self.send_text(repo.git.diff(pull.merge_base, pull.head_sha))


class ReleasesHandler(ApiHandler):
    async def get(self, owner: str, name: str) -> None:
        """GET /repos/{owner}/{repo}/releases (drafts only for writers; newest first)"""
        repo = self.load_repo(owner, name)
        can_write = self.ds.access(repo, self.viewer) in ("admin", "owner", "write")
        releases = [r for r in repo.releases if can_write or not r.draft]
        for flag, attr in (("draft", "draft"), ("pre-release", "prerelease")):
            wanted = self.bool_arg(flag)
            if wanted is not None:
                releases = [r for r in releases if getattr(r, attr) is wanted]
        releases.sort(key=lambda r: r.created, reverse=True)
        page = self.paginate(releases)
        self.send_json([render.release_json(self.ctx, repo, r) for r in page])


# -- Actions, statuses, wiki, compare, labels, milestones -------------------------------------


class ActionRunsHandler(ApiHandler):
    async def get(self, owner: str, name: str) -> None:
        """GET /repos/{owner}/{repo}/actions/runs (newest first; filters as Gitea's)"""
        repo = self.load_repo(owner, name)
        runs = list(reversed(repo.runs))
        status = self.arg("status")
        for value, pick in (
            (self.arg("event"), lambda r: r.event),
            (self.arg("branch"), lambda r: r.branch),
            (self.arg("actor"), lambda r: r.actor),
            (self.arg("head_sha"), lambda r: r.sha),
        ):
            if value:
                runs = [r for r in runs if pick(r) == value]
        if status:
            runs = [r for r in runs if status in (r.status(), r.conclusion())]
        page = self.paginate(runs)
        self.send_json(
            {
                "total_count": len(runs),
                "workflow_runs": [
                    operations.run_json(self.ctx, repo, r, render.user_ref) for r in page
                ],
            }
        )


class ActionRunHandler(ApiHandler):
    def load_run(self, owner: str, name: str, run_id: str) -> tuple[Repo, operations.Run]:
        repo = self.load_repo(owner, name)
        run = next((r for r in repo.runs if r.id == int(run_id)), None)
        if run is None:
            self.not_found("run not found")
        assert run is not None
        return repo, run

    async def get(self, owner: str, name: str, run_id: str) -> None:
        """GET /repos/{owner}/{repo}/actions/runs/{run}"""
        repo, run = self.load_run(owner, name, run_id)
        self.send_json(operations.run_json(self.ctx, repo, run, render.user_ref))


class ActionRunJobsHandler(ActionRunHandler):
    async def get(self, owner: str, name: str, run_id: str) -> None:
        """GET /repos/{owner}/{repo}/actions/runs/{run}/jobs"""
        repo, run = self.load_run(owner, name, run_id)
        page = self.paginate(run.jobs)
        self.send_json(
            {
                "total_count": len(run.jobs),
                "jobs": [operations.job_json(self.ctx, repo, run, j) for j in page],
            }
        )


class ActionJobLogsHandler(ApiHandler):
    async def get(self, owner: str, name: str, job_id: str) -> None:
        """GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs (text/plain)"""
        repo = self.load_repo(owner, name)
        for run in repo.runs:
            for job in run.jobs:
                if job.id == int(job_id):
                    self.send_text(operations.job_log(run, job))
                    return
        self.not_found("job not found")


class CommitStatusHandler(ApiHandler):
    async def get(self, owner: str, name: str, ref: str) -> None:
        """GET /repos/{owner}/{repo}/commits/{ref}/status (combined; latest per context)"""
        repo = self.load_repo(owner, name)
        _ref, sha = self.resolve_ref(repo, ref)
        statuses: list[dict] = []
        for run in repo.runs:
            if run.sha == sha:
                for job in run.jobs:
                    number = len(statuses) + 1
                    statuses.append(
                        operations.status_json(self.ctx, repo, run, job, number, render.user_ref)
                    )
        latest = {s["context"]: s for s in statuses}  # later runs replace earlier ones
        shown = self.paginate(list(latest.values()))
        self.send_json(
            {
                "state": operations.combined_state([s["status"] for s in latest.values()]),
                "sha": sha,
                "total_count": len(latest),
                "statuses": shown,
                "repository": render.repo_json(self.ctx, repo),
                "commit_url": f"{self.ctx.api}repos/{repo.full_name}/commits/{sha}",
                "url": f"{self.ctx.api}repos/{repo.full_name}/commits/{sha}/status",
            }
        )


class CompareHandler(ApiHandler):
    async def get(self, owner: str, name: str, basehead: str) -> None:
        """GET /repos/{owner}/{repo}/compare/{base...head} (JSON, or output=diff|patch)"""
        repo = self.load_repo(owner, name)
        base, dots, head = basehead.partition("...")
        if not dots:
            base, dots, head = basehead.partition("..")
        if not dots or not base or not head:
            self.not_found("no valid basehead")
        _b, base_sha = self.resolve_ref(repo, base)
        _h, head_sha = self.resolve_ref(repo, head)
        behind = {c.sha for c in repo.git.log(base_sha)}
        commits = [c for c in repo.git.log(head_sha) if c.sha not in behind]
        merge_base = next((c.sha for c in repo.git.log(head_sha) if c.sha in behind), None)
        output = self.arg("output")
        if output in ("diff", "patch"):
            if output == "patch":
                self.send_text("".join(render.commit_patch(repo, c) for c in reversed(commits)))
            else:
                self.send_text(repo.git.diff(merge_base, head_sha))
            return
        self.send_json(
            {
                "total_commits": len(commits),
                "commits": [render.commit_json(self.ctx, repo, c) for c in commits],
            }
        )


class WikiPagesHandler(ApiHandler):
    def wiki(self, owner: str, name: str) -> Repo:
        repo = self.load_repo(owner, name)
        if not repo.has_wiki:
            self.not_found()
        return repo

    def email_of(self, login: str) -> str:
        user = self.ds.user(login)
        return user.email if user and user.email else f"{login}@noreply.localhost"

    async def get(self, owner: str, name: str) -> None:
        """GET /repos/{owner}/{repo}/wiki/pages"""
        repo = self.wiki(owner, name)
        page = self.paginate(repo.wiki)
        self.send_json([operations.wiki_meta_json(self.ctx, repo, p, self.email_of) for p in page])


class WikiPageHandler(WikiPagesHandler):
    async def get(self, owner: str, name: str, page_name: str) -> None:  # type: ignore[override]
        """GET /repos/{owner}/{repo}/wiki/page/{pageName} (sub_url, or the title)"""
        repo = self.wiki(owner, name)
        wanted = page_name.replace(" ", "-").lower()
        page = next((p for p in repo.wiki if p.sub_url.lower() == wanted), None)
        if page is None:
            self.not_found("wiki page does not exist")
        assert page is not None
        self.send_json(operations.wiki_page_json(self.ctx, repo, page, self.email_of))


class LabelsHandler(ApiHandler):
    scope = "read:issue"

    async def get(self, owner: str, name: str) -> None:
        """GET /repos/{owner}/{repo}/labels (by name)"""
        repo = self.load_repo(owner, name)
        labels = sorted(repo.labels, key=lambda label: label.name)
        page = self.paginate(labels)
        self.send_json([render.label_json(self.ctx, repo, label) for label in page])


class MilestonesHandler(ApiHandler):
    scope = "read:issue"

    async def get(self, owner: str, name: str) -> None:
        """GET /repos/{owner}/{repo}/milestones (state: open (default), closed, all)"""
        repo = self.load_repo(owner, name)
        state = (self.arg("state") or "open").lower()
        wanted = (self.arg("name") or "").lower()
        found = [
            m
            for m in repo.milestones
            if (state == "all" or m.state == state) and wanted in m.title.lower()
        ]
        found.sort(key=lambda m: (m.due_on is None, m.due_on or m.created))
        page = self.paginate(found)
        self.send_json([render.milestone_json(repo, m) for m in page])


class NotFoundHandler(ApiHandler):
    scope = None

    async def prepare(self) -> None:
        await super().prepare()
        self.not_found()


# ------------------------------------------------------------------------------------------
# Control endpoint (tests and benchmarks only; off unless control=True)
# ------------------------------------------------------------------------------------------


class ControlHandler(web.RequestHandler):
    def initialize(self, double: GiteaDouble) -> None:
        self.double = double

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", JSON_TYPE)

    def check_xsrf_cookie(self) -> None:
        return None

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish(json.dumps({"message": self._reason}))


class FaultsControl(ControlHandler):
    def get(self, fault_id: str | None = None) -> None:
        """GET /__double__/faults: the active faults"""
        self.reply({"faults": self.double.faults.to_list()})

    def post(self, fault_id: str | None = None) -> None:
        """POST /__double__/faults {"kind": ..., options...}: add a fault"""
        try:
            options = json.loads(self.request.body or b"{}")
            kind = options.pop("kind")
            fault = self.double.faults.add(kind, **options)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise web.HTTPError(400, reason=f"bad fault: {exc}") from exc
        self.reply(fault.to_dict(), 201)

    def delete(self, fault_id: str | None = None) -> None:
        """DELETE /__double__/faults[/{id}]: remove one fault, or all (and release hangs)"""
        if fault_id:
            if not self.double.faults.remove(int(fault_id)):
                raise web.HTTPError(404, reason="no such fault")
        else:
            self.double.faults.clear()
        self.set_status(204)
        self.finish()


class RequestsControl(ControlHandler):
    def get(self) -> None:
        """GET /__double__/requests: what the API received, oldest first"""
        self.reply({"requests": [r.to_dict() for r in self.double.requests]})

    def delete(self) -> None:
        """DELETE /__double__/requests: forget them"""
        self.double.clear_requests()
        self.set_status(204)
        self.finish()


class StatsControl(ControlHandler):
    def get(self) -> None:
        """GET /__double__/stats: in-flight counters"""
        d = self.double
        self.reply(
            {
                "in_flight": d.in_flight,
                "max_in_flight": d.max_in_flight,
                "requests": len(d.requests),
            }
        )

    def delete(self) -> None:
        """DELETE /__double__/stats: reset max_in_flight"""
        self.double.reset_stats()
        self.set_status(204)
        self.finish()


# ------------------------------------------------------------------------------------------
# Assembly
# ------------------------------------------------------------------------------------------

_R = r"/api/v1/repos/([^/]+)/([^/]+)"
API_ROUTES: list[tuple[str, type[web.RequestHandler]]] = [
    (r"/api/v1/version", VersionHandler),
    (r"/api/v1/user", UserHandler),
    (r"/api/v1/repos/search", RepoSearchHandler),
    (r"/api/v1/repos/issues/search", IssueSearchHandler),
    (_R, RepoHandler),
    (_R + r"/branches", BranchesHandler),
    (_R + r"/tags", TagsHandler),
    (_R + r"/git/trees/([^/]+)", TreeHandler),
    (_R + r"/contents/?", ContentsHandler),
    (_R + r"/contents/(.+)", ContentsHandler),
    (_R + r"/commits", CommitsHandler),
    (_R + r"/git/commits/([^/]+?)\.(diff|patch)", CommitDiffHandler),
    (_R + r"/git/commits/([^/]+)", CommitHandler),
    (_R + r"/issues", IssuesHandler),
    (_R + r"/issues/(\d+)", IssueHandler),
    (_R + r"/issues/(\d+)/comments", IssueCommentsHandler),
    (_R + r"/pulls", PullsHandler),
    (_R + r"/pulls/(\d+)\.(diff|patch)", PullDiffHandler),
    (_R + r"/pulls/(\d+)", PullHandler),
    (_R + r"/pulls/(\d+)/files", PullFilesHandler),
    (_R + r"/releases", ReleasesHandler),
    (_R + r"/actions/runs", ActionRunsHandler),
    (_R + r"/actions/runs/(\d+)", ActionRunHandler),
    (_R + r"/actions/runs/(\d+)/jobs", ActionRunJobsHandler),
    (_R + r"/actions/jobs/(\d+)/logs", ActionJobLogsHandler),
    (_R + r"/commits/([^/]+)/status", CommitStatusHandler),
    (_R + r"/compare/(.+)", CompareHandler),
    (_R + r"/wiki/pages", WikiPagesHandler),
    (_R + r"/wiki/page/([^/]+)", WikiPageHandler),
    (_R + r"/labels", LabelsHandler),
    (_R + r"/milestones", MilestonesHandler),
    (r"/api/v1/.*", NotFoundHandler),
]


def make_double_app(
    token: str = DEMO_TOKEN,
    *,
    extra_tokens: dict[str, tuple[str, Iterable[str]]] | None = None,
    dataset: Dataset | None = None,
    control: bool = False,
    prefix: str = "",
    **settings: Any,
) -> web.Application:
    """Build the double. ``token`` is ``aegis-bot``'s (all read scopes); ``extra_tokens`` maps more
    tokens to ``(login, scopes)``. ``control=True`` adds ``/__double__/{faults,requests,stats}``.
    ``prefix`` serves Gitea under a sub-path (``"/gitea"`` -> ``/gitea/api/v1/...``).

    The result has ``app.double`` (:class:`GiteaDouble`) and ``app.faults`` (its :class:`Faults`).
    """
    ds = dataset or build_dataset(
        token, {k: (login, frozenset(s)) for k, (login, s) in (extra_tokens or {}).items()}
    )
    double = GiteaDouble(ds)
    routes: list[Any] = []
    if control:
        routes += [
            (r"/__double__/faults/?", FaultsControl, {"double": double}),
            (r"/__double__/faults/(\d+)", FaultsControl, {"double": double}),
            (r"/__double__/requests", RequestsControl, {"double": double}),
            (r"/__double__/stats", StatsControl, {"double": double}),
            (r"/__double__/oauth", OAuthControl, {"double": double}),
        ]
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    routes += [
        (pattern, handler, {"double": double})
        for pattern, handler in oauth_routes(re.escape(prefix))
    ]
    routes += [
        (re.escape(prefix) + pattern, handler, {"double": double})
        for pattern, handler in API_ROUTES
    ]
    app = web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args={"double": double},
        gitea_prefix=prefix,
        **{"log_function": _log_request, **settings},
    )
    app.double = double  # type: ignore[attr-defined]
    app.faults = double.faults  # type: ignore[attr-defined]
    return app
