"""An async, read-only Gitea API client that never blocks the Tornado event loop.

HTTP runs on a ``requests_futures`` thread pool; coroutines await those futures with
``asyncio.wrap_future``. The whole client is built to keep one misbehaving Gitea from hurting the
server (style.md §1 "Limits and upstream calls", practice 8):

* **Bounded.** At most ``pool_size`` calls are in flight (``asyncio.BoundedSemaphore``); the thread
  pool and the urllib3 keep-alive pool have the same size.
* **Timed.** Each attempt has a connect and a read timeout of ``timeout`` seconds. All attempts of a
  call, their backoff sleeps and the body read share one ``deadline`` (seconds from the start of the
  call, waiting for a free slot included). Default: ``(retries + 1) * timeout + Σ backoff caps +
  0.1 * timeout``, i.e. room for every attempt to time out once. A call that cannot get a slot
  before its deadline fails as :class:`GiteaUnavailable` (Gitea is too slow for the load). The deadline is also checked while the body streams in, inside the
  worker thread, so a slow drip cannot hold a thread forever.
* **Retried carefully.** Only GET exists, and it is retried only on connection errors, timeouts and
  HTTP 502/503/504, with exponential backoff (``backoff_base * 2**(n-1)``, capped at
  ``backoff_max``) and jitter (×0.5–1.0); a ``Retry-After`` from Gitea lengthens the wait. A retry is
  started only if at least one full ``timeout`` still fits before the deadline after its backoff.
* **Shaped.** A 200 body must have the endpoint's shape, and every item of a list must be an
  object, as Gitea's always are; anything else is a :class:`GiteaBadResponse`.
* **Capped.** Bodies are streamed (``stream=True``) and read inside the worker thread by a response
  hook, at most ``max_response_bytes`` (after content decoding); a bigger body is a
  :class:`GiteaBadResponse`, never loaded whole.
* **Scoped.** Callers name an endpoint from :data:`ENDPOINTS`; the path is built and encoded here.
  Redirects (Gitea answers 301/307 for renamed repositories) are followed only to the same scheme,
  host and port, and only inside ``/api/v1``. A redirect into another repository is followed only
  when ``repository_guard(owner, repo)`` allows it; otherwise the call fails as
  :class:`GiteaNotFound` and the other repository is never requested.
* **Quiet about secrets.** The token travels only in the ``Authorization`` header. It never appears
  in messages, reprs or logs, and messages name the API path but never the host or the query.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import requests
import structlog
import urllib3
from requests.auth import AuthBase
from requests_futures.sessions import FuturesSession

from aegis_tornado import __version__

from .credentials import REQUEST_CREDENTIALS
from .endpoints import SHAPES, build_path
from .errors import (
    GiteaAuthError,
    GiteaBadRequest,
    GiteaBadResponse,
    GiteaEmptyRepository,
    GiteaError,
    GiteaNotFound,
    GiteaUnavailable,
)
from .limits import MAX_PAGE_LIMIT, MAX_TREE_PER_PAGE

__all__ = ["GiteaClient", "Page", "TreePage", "MAX_PAGE_LIMIT", "MAX_TREE_PER_PAGE"]

log = structlog.get_logger("aegis.gitea")

#: Told (endpoint, failed attempt, delay in seconds) before each retry of a call made in this
#: context, so whoever made the call can tell its own user (an MCP tool call's log line) while
#: this client knows nothing of them.
retry_listener: ContextVar[Callable[[str, int, float], None] | None] = ContextVar(
    "gitea_retry_listener", default=None
)

DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024

_RETRY_STATUSES = frozenset({502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
# Query parameters that would smuggle credentials or identity switches past the header.
_RESERVED_QUERY = frozenset({"token", "access_token", "sudo"})
_LINK_RE = re.compile(r'<([^>]*)>\s*;\s*rel="?([^",;]+)"?')
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")


@dataclass(frozen=True)
class Page:
    """One page of a Gitea list.

    ``limit`` is the page size actually requested (after clamping); ``total`` is ``X-Total-Count``
    (``None`` when Gitea did not send it); ``has_more`` says whether asking for ``page + 1`` is
    worthwhile.
    """

    items: list[Any]
    page: int
    limit: int
    has_more: bool
    total: int | None


@dataclass(frozen=True)
class TreePage(Page):
    """A page of a git tree; ``sha`` is the tree's SHA (Gitea resolves refs and commits to it)."""

    sha: str = ""


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _BodyTooLarge(Exception):
    pass


class _DeadlineExceeded(Exception):
    pass


class _TokenAuth(AuthBase):
    """Adds ``Authorization: token …``; being set at all also stops requests from reading ~/.netrc."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        # A per-request credential (an OAuth caller's own Gitea token) is already in the headers.
        if self._token and "Authorization" not in r.headers:
            r.headers["Authorization"] = f"token {self._token}"
        return r

    def __repr__(self) -> str:  # never show the token
        return "_TokenAuth(<set>)" if self._token else "_TokenAuth(None)"


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def _query_items(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if key.lower() in _RESERVED_QUERY:
            raise ValueError(f"query parameter {key!r} is not allowed; the token goes in a header")
        if value is None:
            continue
        values: Iterable[Any] = value if isinstance(value, (list, tuple)) else (value,)
        for v in values:
            if isinstance(v, bool):
                items.append((key, "true" if v else "false"))
            elif isinstance(v, (str, int, float)):
                items.append((key, str(v)))
            else:
                raise ValueError(f"query parameter {key!r} must be a string, number or boolean")
    return items


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _link_rels(headers: Mapping[str, str]) -> set[str] | None:
    value = headers.get("Link")
    if value is None:
        return None
    return {rel.strip().lower() for _url, rel in _LINK_RE.findall(value)}


class GiteaClient:
    """Read-only access to one Gitea's REST API (``{base_url}/api/v1``).

    ``base_url`` is Gitea's ROOT_URL and may carry a sub-path (``https://h/gitea``); a trailing
    ``/api/v1`` is tolerated. ``token`` is sent as ``Authorization: token …``; without one the
    client is anonymous (public repositories only). See the module docstring for timeouts,
    retries, the deadline and the body cap.

    The client binds to the event loop that first uses it. Call :meth:`close` when done (or use
    ``async with``).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        pool_size: int = 16,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        deadline: float | None = None,
        user_agent: str | None = None,
        backoff_base: float = 0.25,
        backoff_max: float = 2.0,
        repository_guard: Callable[[str, str], bool] | None = None,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("Gitea base URL must be an absolute http:// or https:// URL")
        if parts.username or parts.password:
            raise ValueError(
                "Gitea base URL must not contain credentials; pass the token separately"
            )
        if parts.query or parts.fragment:
            raise ValueError("Gitea base URL must not have a query or fragment")
        if token is not None and (not token or re.search(r"[\s\x00-\x1f\x7f]", token)):
            raise ValueError(
                "Gitea token must be non-empty and contain no whitespace or control characters"
            )
        if timeout <= 0 or retries < 0 or pool_size < 1 or max_response_bytes < 1:
            raise ValueError(
                "timeout, pool_size and max_response_bytes must be positive; retries >= 0"
            )

        root_path = parts.path.rstrip("/")
        if root_path.endswith("/api/v1"):
            root_path = root_path[: -len("/api/v1")]
        self._api_path = f"{root_path}/api/v1"
        self._api_root = f"{parts.scheme.lower()}://{parts.netloc}{self._api_path}"
        self._origin = _origin(self._api_root)
        self._base_url = f"{parts.scheme.lower()}://{parts.netloc}{root_path}"
        self._token = token
        self._timeout = float(timeout)
        self._retries = int(retries)
        self._pool_size = int(pool_size)
        self._max_bytes = int(max_response_bytes)
        self._backoff_base = float(backoff_base)
        self._backoff_max = float(backoff_max)
        if deadline is None:
            caps = sum(self._backoff_cap(n) for n in range(1, self._retries + 1))
            deadline = (self._retries + 1) * self._timeout + caps + 0.1 * self._timeout
        if deadline <= 0:
            raise ValueError("deadline must be positive")
        self._deadline = float(deadline)
        self._repository_guard = repository_guard

        self._executor = ThreadPoolExecutor(
            max_workers=self._pool_size, thread_name_prefix="aegis-gitea"
        )
        self._session = FuturesSession(
            executor=self._executor,
            adapter_kwargs={
                "pool_connections": self._pool_size,
                "pool_maxsize": self._pool_size,
                "max_retries": 0,  # retries are ours, with a deadline; urllib3 must not add any
            },
        )
        self._session.auth = _TokenAuth(token)
        # Token auth needs no cookies; a jar shared by worker threads would only carry whatever
        # session cookie Gitea hands out from one call to the next.
        self._session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        # Every call goes to the same host, so the environment's proxy and CA settings are read
        # once, here: left to itself requests re-reads the environment on every call, a
        # measurable share of each one. (Also keeps ~/.netrc credentials out of the requests.)
        self._session.trust_env = False
        self._session.proxies = requests.utils.get_environ_proxies(self._api_root)
        self._session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        self._session.headers.update(
            {
                "User-Agent": user_agent or f"aegis-gitea-mcp/{__version__}",
                "Accept": "application/json",
            }
        )
        self._semaphore = asyncio.BoundedSemaphore(self._pool_size)
        self._closed = False
        #: Told of every call once it ends: ``(endpoint, seconds, error type name or None,
        #: path)``. Metrics set it; the client itself knows nothing of them.
        self.observer: Callable[[str, float, str | None, str], None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def deadline(self) -> float:
        return self._deadline

    def __repr__(self) -> str:
        return f"GiteaClient(base_url={self._base_url!r}, token={'<set>' if self._token else None})"

    def close(self) -> None:
        """Stop accepting calls, cancel queued ones and drop pooled connections (does not wait)."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        requests.Session.close(self._session)  # the adapters; the executor is ours, closed above

    async def __aenter__(self) -> GiteaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- public calls ----------------------------------------------------------------------

    async def get_json(
        self, endpoint: str, *, params: Mapping[str, Any] | None = None, **path_params: Any
    ) -> Any:
        """GET a JSON endpoint and return the decoded body (shape checked against the endpoint)."""
        shape = SHAPES.get(endpoint)
        if shape == "text":
            raise ValueError(f"endpoint {endpoint!r} returns text; use get_text()")
        path = build_path(endpoint, **path_params)
        reply = await self._call(endpoint, path, _query_items(params))
        data = self._decode_json(reply, path)
        self._check_shape(data, shape, path)
        return data

    async def get_page(
        self,
        endpoint: str,
        *,
        page: int = 1,
        limit: int = MAX_PAGE_LIMIT,
        params: Mapping[str, Any] | None = None,
        **path_params: Any,
    ) -> Page:
        """GET one page of a list endpoint. ``limit`` is clamped to 1..50 and ``page`` to >= 1.

        ``repo_search``'s ``{"ok": true, "data": [...]}`` wrapper is unwrapped. For trees use
        :meth:`get_tree` (they page with ``per_page``).
        """
        shape = SHAPES.get(endpoint)
        if shape not in ("array", "search"):
            raise ValueError(f"endpoint {endpoint!r} is not a paged list")
        if params and ({"page", "limit"} & set(params)):
            raise ValueError("pass page and limit as arguments, not in params")
        page = max(1, int(page))
        limit = min(MAX_PAGE_LIMIT, max(1, int(limit)))
        query = _query_items(params) + [("page", str(page)), ("limit", str(limit))]
        path = build_path(endpoint, **path_params)
        reply = await self._call(endpoint, path, query)
        data = self._decode_json(reply, path)
        self._check_shape(data, shape, path)
        items = data["data"] if shape == "search" else data
        total = _header_int(reply.headers, "X-Total-Count")
        return Page(
            items=items,
            page=page,
            limit=limit,
            has_more=self._has_more(reply, page, limit, total, items),
            total=total,
        )

    async def get_tree(
        self,
        owner: str,
        repo: str,
        sha: str,
        *,
        recursive: bool = False,
        page: int = 1,
        per_page: int = MAX_TREE_PER_PAGE,
    ) -> TreePage:
        """GET one page of a git tree (``sha`` = commit, tree, branch or tag name).

        ``per_page`` is clamped to 1..1000; ``has_more`` is Gitea's ``truncated`` flag and ``total``
        its ``total_count``.
        """
        page = max(1, int(page))
        per_page = min(MAX_TREE_PER_PAGE, max(1, int(per_page)))
        query = [
            ("recursive", "true" if recursive else "false"),
            ("page", str(page)),
            ("per_page", str(per_page)),
        ]
        path = build_path("tree", owner=owner, repo=repo, sha=sha)
        reply = await self._call("tree", path, query)
        data = self._decode_json(reply, path)
        self._check_shape(data, "tree", path)
        entries = data.get("tree") or []
        total = data.get("total_count")
        return TreePage(
            items=entries,
            page=page,
            limit=per_page,
            has_more=bool(data.get("truncated")),
            total=total if isinstance(total, int) and not isinstance(total, bool) else None,
            sha=str(data.get("sha") or ""),
        )

    async def get_text(
        self, endpoint: str, *, params: Mapping[str, Any] | None = None, **path_params: Any
    ) -> str:
        """GET a plain-text endpoint (``commit_diff``, ``pull_diff``); invalid UTF-8 is replaced."""
        if SHAPES.get(endpoint) != "text":
            raise ValueError(f"endpoint {endpoint!r} does not return text; use get_json()")
        path = build_path(endpoint, **path_params)
        reply = await self._call(endpoint, path, _query_items(params), accept="text/plain")
        return reply.body.decode("utf-8", errors="replace")

    # -- internals: one call ---------------------------------------------------------------

    def _backoff_cap(self, retry_number: int) -> float:
        return min(self._backoff_max, self._backoff_base * (2 ** (retry_number - 1)))

    async def _call(
        self, endpoint: str, path: str, query: list[tuple[str, str]], accept: str | None = None
    ) -> _Reply:
        if self.observer is None:
            return await self._call_unobserved(endpoint, path, query, accept)
        started, error_type = time.monotonic(), None
        try:
            return await self._call_unobserved(endpoint, path, query, accept)
        except asyncio.CancelledError:
            error_type = "Cancelled"
            raise
        except Exception as error:
            error_type = type(error).__name__
            raise
        finally:
            self.observer(endpoint, time.monotonic() - started, error_type, path)

    async def _call_unobserved(
        self, endpoint: str, path: str, query: list[tuple[str, str]], accept: str | None = None
    ) -> _Reply:
        if self._closed:
            raise RuntimeError("GiteaClient is closed")
        headers: dict[str, str] | None = {"Accept": accept} if accept else None
        source = REQUEST_CREDENTIALS.get()
        if source is not None:
            # The caller's own Gitea rights, never the server's token (header only, never ?token=).
            try:
                user_token = await source.token()
            except GiteaUnavailable:
                raise  # the token could not be read just now (its store is down): retryable
            except Exception:
                raise GiteaAuthError(
                    f"Your Gitea authorization is gone (revoked or expired) for {path}; "
                    "sign in again.",
                    status=401,
                    path=path,
                ) from None
            headers = {**(headers or {}), "Authorization": f"Bearer {user_token}"}
        deadline = time.monotonic() + self._deadline
        # Waiting for a slot is part of the call: under load the deadline still holds.
        if not await self._acquire_slot(self._deadline):
            log.debug("gitea.no_slot", endpoint=endpoint, pool_size=self._pool_size)
            raise GiteaUnavailable(
                f"Gitea unavailable: all {self._pool_size} connections were busy for the whole"
                f" deadline before {path} could be requested (Gitea is slow). Try again later.",
                path=path,
            )
        try:
            return await self._call_with_slot(endpoint, path, query, headers, deadline)
        except GiteaAuthError as error:
            if source is not None and error.status == 401:
                await source.rejected()  # the user revoked the grant in Gitea
            raise
        finally:
            self._semaphore.release()

    async def _acquire_slot(self, timeout: float) -> bool:
        """Take one of the ``pool_size`` slots within ``timeout`` seconds; False if none came free.

        A slot granted after the caller stopped waiting (timed out or cancelled) is handed back."""
        if not self._semaphore.locked():
            await self._semaphore.acquire()  # free now: returns at once
            return True
        waiter = asyncio.ensure_future(self._semaphore.acquire())

        def hand_back(task: asyncio.Future) -> None:
            if not task.cancelled() and task.exception() is None:
                self._semaphore.release()

        try:
            done, _ = await asyncio.wait({waiter}, timeout=max(0.0, timeout))
        except asyncio.CancelledError:
            waiter.add_done_callback(hand_back)
            waiter.cancel()
            raise
        if done:
            return True
        waiter.add_done_callback(hand_back)
        waiter.cancel()
        return False

    async def _call_with_slot(
        self,
        endpoint: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str] | None,
        deadline: float,
    ) -> _Reply:
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            error: GiteaError
            try:
                reply = await self._attempt(endpoint, path, query, headers, attempt, deadline)
            except _Transient as transient:
                error = transient.to_error(path, attempt)
            else:
                if reply.status not in _RETRY_STATUSES:
                    return self._raise_for_status(reply, path, attempt)
                error = self._status_error(reply, path, attempt)
                retry_after = _retry_after(reply.headers)
            if attempt > self._retries:
                raise error from error.__cause__
            delay = self._backoff_cap(attempt) * random.uniform(0.5, 1.0)
            if retry_after is not None:
                delay = max(delay, retry_after)
            if deadline - time.monotonic() - delay < self._timeout:
                log.debug(
                    "gitea.retry_skipped", endpoint=endpoint, attempt=attempt, reason="deadline"
                )
                raise error from error.__cause__
            log.debug(
                "gitea.retry", endpoint=endpoint, attempt=attempt, delay_ms=round(delay * 1000)
            )
            listener = retry_listener.get()
            if listener is not None:
                listener(endpoint, attempt, delay)
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        endpoint: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str] | None,
        attempt: int,
        deadline: float,
    ) -> _Reply:
        url = self._api_root + path
        params: list[tuple[str, str]] | None = query
        for _hop in range(_MAX_REDIRECTS + 1):
            t0 = time.monotonic()
            remaining = deadline - t0
            if remaining <= 0:
                raise _Transient("timeout", self._deadline)
            per_try = min(self._timeout, remaining)
            abort = threading.Event()
            try:
                future = self._session.get(
                    url,
                    params=params,
                    headers=headers,
                    timeout=(per_try, per_try),
                    allow_redirects=False,
                    stream=True,
                    hooks={"response": self._body_reader(deadline, abort)},
                )
                response = await asyncio.wait_for(asyncio.wrap_future(future), timeout=remaining)
            except asyncio.CancelledError:
                abort.set()  # the worker stops reading at its next chunk
                raise
            except Exception as exc:
                abort.set()
                duration_ms = round((time.monotonic() - t0) * 1000)
                log.debug(
                    "gitea.request",
                    method="GET",
                    endpoint=endpoint,
                    status=None,
                    duration_ms=duration_ms,
                    attempt=attempt,
                    error=type(exc).__name__,
                )
                raise _classify(exc, per_try, path, self._max_bytes) from exc
            reply = _Reply(response.status_code, response.headers, response.aegis_body)
            log.debug(
                "gitea.request",
                method="GET",
                endpoint=endpoint,
                status=reply.status,
                duration_ms=round((time.monotonic() - t0) * 1000),
                attempt=attempt,
            )
            if reply.status not in _REDIRECT_STATUSES:
                return reply
            url = self._redirect_target(url, reply, path)
            params = None  # the Location carries its own query
        raise GiteaBadResponse(
            f"Gitea redirected {path} too many times; the client stopped following.", path=path
        )

    def _redirect_target(self, current: str, reply: _Reply, path: str) -> str:
        location = reply.headers.get("Location")
        if not location:
            raise GiteaBadResponse(
                f"Gitea answered {path} with HTTP {reply.status} but no Location.",
                status=reply.status,
                path=path,
            )
        target = urljoin(current, location)
        target_path = urlsplit(target).path
        if _origin(target) != self._origin or not target_path.startswith(self._api_path + "/"):
            raise GiteaBadResponse(
                f"Gitea redirected {path} to another server or outside its API; such redirects are not followed.",
                status=reply.status,
                path=path,
            )
        moved_to = _repository_of(target_path[len(self._api_path) :])
        if (
            moved_to is not None
            and self._repository_guard is not None
            and not self._repository_guard(*moved_to)
        ):
            # A renamed or transferred repository may now be one the caller must not reach: it
            # is never requested, and it looks exactly like a missing one.
            log.debug("gitea.redirect_refused", reason="repository_guard")
            raise GiteaNotFound(
                f"Not found: {path} does not exist, or it is not visible to the server's Gitea account."
                " Check the owner, repository, ref, path or number.",
                status=404,
                path=path,
            )
        return target

    def _body_reader(
        self, deadline: float, abort: threading.Event
    ) -> Callable[..., requests.Response]:
        limit = self._max_bytes

        def read_body(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
            # Runs in the worker thread once the headers are in: read at most `limit` bytes, and
            # stop as soon as the call's deadline passes or the awaiting coroutine gave up.
            try:
                declared = response.headers.get("Content-Length", "").strip()
                if declared.isdigit() and int(declared) > limit:
                    raise _BodyTooLarge()
                buf = bytearray()
                for chunk in _chunks(response):
                    buf += chunk
                    if len(buf) > limit:
                        raise _BodyTooLarge()
                    if abort.is_set() or time.monotonic() > deadline:
                        raise _DeadlineExceeded()
                response.aegis_body = bytes(buf)  # type: ignore[attr-defined]
            except BaseException:
                response.close()  # drop the connection; the rest of the body is never read
                raise
            return response

        return read_body

    # -- internals: interpretation ---------------------------------------------------------

    def _has_more(
        self, reply: _Reply, page: int, limit: int, total: int | None, items: list[Any]
    ) -> bool:
        rels = _link_rels(reply.headers)
        if rels is not None and "next" in rels:
            return True
        has_more = reply.headers.get("X-HasMore")
        if has_more is not None:
            return has_more.strip().lower() == "true"
        if rels is not None:  # a Link header without rel="next": this is the last page
            return False
        if total is not None:  # Gitea omits Link when everything fits on one page
            return page * limit < total
        return len(items) >= limit

    def _decode_json(self, reply: _Reply, path: str) -> Any:
        try:
            return json.loads(reply.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise GiteaBadResponse(
                f"Gitea's answer for {path} is not valid JSON (malformed or cut short); try again later.",
                status=reply.status,
                path=path,
            ) from exc

    def _check_shape(self, data: Any, shape: str | None, path: str) -> None:
        def objects(items: Any) -> bool:  # Gitea's lists hold objects, never anything else
            return isinstance(items, list) and all(isinstance(item, dict) for item in items)

        ok = {
            "object": isinstance(data, dict),
            "tree": isinstance(data, dict) and objects(data.get("tree") or []),
            "array": objects(data),
            "object_or_array": isinstance(data, dict) or objects(data),
            "search": isinstance(data, dict)
            and data.get("ok") is True
            and objects(data.get("data")),
        }.get(shape or "", True)
        if not ok:
            raise GiteaBadResponse(
                f"Gitea's answer for {path} has an unexpected shape (expected {shape}).", path=path
            )

    def _upstream_message(self, reply: _Reply) -> str:
        """Gitea's ``message``, cleaned for quoting: one line, no controls, short, token-free."""
        if len(reply.body) > 16 * 1024:
            return ""
        try:
            data = json.loads(reply.body)
        except (ValueError, UnicodeDecodeError):
            return ""
        message = data.get("message") if isinstance(data, dict) else None
        if not isinstance(message, str):
            return ""
        message = " ".join(_CONTROL_RE.sub(" ", message).split())
        if self._token:
            message = message.replace(self._token, "[redacted]")
        return message[:200] + ("…" if len(message) > 200 else "")

    def _raise_for_status(self, reply: _Reply, path: str, attempt: int) -> _Reply:
        if 200 <= reply.status < 300:
            return reply
        raise self._status_error(reply, path, attempt)

    def _status_error(self, reply: _Reply, path: str, attempt: int) -> GiteaError:
        status = reply.status
        said = self._upstream_message(reply)
        quoted = f' Gitea said: "{said}".' if said else ""
        if status == 404:
            return GiteaNotFound(
                f"Not found: {path} does not exist, or it is not visible to the server's Gitea account."
                " Check the owner, repository, ref, path or number.",
                status=status,
                path=path,
            )
        if status == 401:
            if self._token:
                text = (
                    f"Gitea rejected the server's access token (HTTP 401 on {path}): it is invalid, expired or"
                    " revoked. An operator must configure a valid token; retrying will not help."
                )
            else:
                text = (
                    f"Gitea requires authentication for {path} (HTTP 401) and the server has no Gitea token"
                    " configured; an operator must configure one."
                )
            return GiteaAuthError(text + quoted, status=status, path=path)
        if status == 403:
            if "scope" in said.lower():
                reason = (
                    "the server's token is missing a required scope (it needs read:repository, read:issue,"
                    " read:user and read:organization)"
                )
            else:
                reason = "the server's Gitea account lacks read permission for this part of the repository"
            return GiteaAuthError(
                f"Gitea refused access to {path} (HTTP 403): {reason}.{quoted}",
                status=status,
                path=path,
            )
        if status == 409:
            return GiteaEmptyRepository(
                f"The repository is empty (HTTP 409 on {path}): it has no commits yet, so there are no files,"
                " commits or history to read.",
                status=status,
                path=path,
            )
        if status in (400, 422):
            return GiteaBadRequest(
                f"Gitea rejected the request for {path} as invalid (HTTP {status}).{quoted} Check the parameters.",
                status=status,
                path=path,
            )
        if status == 429:
            return GiteaUnavailable(
                f"Gitea unavailable: it is rate-limiting requests (HTTP 429 on {path}). Try again later.",
                status=status,
                path=path,
            )
        if status >= 500:
            return GiteaUnavailable(
                f"Gitea unavailable: it answered HTTP {status} for {path} (after {attempt} attempt(s)). Try again later.",
                status=status,
                path=path,
            )
        if 300 <= status < 400:
            return GiteaBadResponse(
                f"Gitea answered {path} with an unexpected redirect (HTTP {status}).",
                status=status,
                path=path,
            )
        return GiteaBadRequest(
            f"Gitea refused the request for {path} (HTTP {status}).{quoted}",
            status=status,
            path=path,
        )


class _Transient(Exception):
    """A failure worth retrying (for GET): timeout or connection trouble."""

    def __init__(self, kind: str, seconds: float = 0.0) -> None:
        super().__init__(kind)
        self.kind = kind
        self.seconds = seconds

    def to_error(self, path: str, attempt: int) -> GiteaUnavailable:
        if self.kind == "timeout":
            text = f"Gitea unavailable: no answer for {path} within {self.seconds:.1f}s (after {attempt} attempt(s))."
        else:
            text = f"Gitea unavailable: {self.kind} for {path} (after {attempt} attempt(s))."
        error = GiteaUnavailable(text + " Try again later.", path=path)
        error.__cause__ = self.__cause__
        return error


def _classify(exc: BaseException, per_try: float, path: str, limit: int) -> Exception:
    """Turn what the worker raised into a `_Transient` (retry) or a final `GiteaError`."""
    if isinstance(exc, _BodyTooLarge):
        return GiteaBadResponse(
            f"Gitea's answer for {path} is larger than the {limit}-byte limit; ask for a smaller page or file.",
            path=path,
        )
    if isinstance(exc, (_DeadlineExceeded, asyncio.TimeoutError)):
        # The whole call's time is used up: never retried.
        return GiteaUnavailable(
            f"Gitea unavailable: {path} did not complete in time. Try again later.", path=path
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return GiteaUnavailable(
            f"Gitea unavailable: the TLS handshake failed for {path}; an operator must check Gitea's certificate.",
            path=path,
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return _Transient("timeout", per_try)
    if isinstance(exc, requests.exceptions.ConnectionError):
        refused = "refused" in repr(exc).lower()
        return _Transient(
            "connection refused" if refused else "the connection failed or was dropped"
        )
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return _Transient("the connection was dropped mid-answer")
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return GiteaBadResponse(f"Gitea's answer for {path} could not be decoded.", path=path)
    if isinstance(exc, GiteaError):
        return exc
    return GiteaUnavailable(
        f"Gitea unavailable: the request for {path} failed ({type(exc).__name__}).", path=path
    )


def _chunks(response: requests.Response) -> Iterable[bytes]:
    """The decoded body in pieces as they arrive (``read1``: one socket read each, so a slow
    drip still yields often enough to check the deadline), with requests' exception types."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:  # urllib3 < 2
        yield from response.iter_content(_CHUNK)
        return
    while True:
        try:
            data = read1(_CHUNK, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(str(exc)) from exc
        except urllib3.exceptions.DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(str(exc)) from exc
        except (urllib3.exceptions.ProtocolError, OSError) as exc:
            raise requests.exceptions.ChunkedEncodingError(str(exc)) from exc
        if not data:
            return
        yield data


_REPOSITORY_PATH = re.compile(r"^/repos/([^/]+)/([^/]+)(?:/|$)")


def _repository_of(api_path: str) -> tuple[str, str] | None:
    """``(owner, repo)`` named by an API path (relative to ``/api/v1``), decoded; else None."""
    match = _REPOSITORY_PATH.match(api_path)
    if match is None:
        return None
    return unquote(match.group(1)), unquote(match.group(2))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None
