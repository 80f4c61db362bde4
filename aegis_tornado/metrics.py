"""Prometheus metrics: what the server did, in prometheus-client's own exposition format.

Each :class:`Metrics` has its own ``CollectorRegistry`` (never the global default one), so two
servers in one process (the tests) never share a count.

Labels are only ever values this code chose: a route template, a registered tool name, an
outcome or reason constant, a Gitea endpoint name from ``gitea.endpoints`` (a template, never a
path). Never a key, a token, user input or a repository name, except the one family an operator
opts into with ``METRICS_REPO_LABELS`` (successful Gitea calls per repository: only
repositories that exist and the policy let through, so its size stays that of the instance).

Counts are pushed by small hooks where things happen (the access log function, the tool-call
observer, the audit log, the Gitea client); levels (limiter, sessions, streams, the audit queue)
are read from the running objects at scrape time.

With ``STATE_URL`` the failed-auth limiter lives in Redis, not in this process: its gauges are
read from Redis before each scrape (``read_shared_state``: one O(log n) script, at most
``SHARED_READ_TIMEOUT`` seconds, never blocking the loop), and left out of a scrape that could
not read them rather than reported as zero; ``aegis_state_store_available`` says which.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .state.store import StateUnavailable

if TYPE_CHECKING:
    from .context import AppContext

__all__ = ["CONTENT_TYPE", "Metrics", "observe_log_pipeline"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_OUTCOME = re.compile(r"[a-z0-9_]{1,40}")
_REPO_PATH = re.compile(r"^/repos/([^/]+)/([^/]+)")
#: Seconds a scrape waits for the levels kept in Redis (STATE_URL) before leaving them out.
SHARED_READ_TIMEOUT = 1.0
#: Labelled children the hooks remember (far more than the label sets the code can produce).
_MAX_CACHED = 4096
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The log pipeline is process-wide (configured once by the command line): its queue is read at
# scrape time by every Metrics of the process.
_log_runtime: Any = None


def observe_log_pipeline(runtime: Any) -> None:
    """Report this log pipeline's queue depth and dropped audit lines."""
    global _log_runtime
    _log_runtime = runtime


def _constant(value: object, fallback: str = "other") -> str:
    """A label value that is one of the code's own constants, or ``fallback``."""
    return value if isinstance(value, str) and _OUTCOME.fullmatch(value) else fallback


def _gitea_outcome(error_type: str | None) -> str:
    """``None`` → ``ok``; ``GiteaNotFound`` → ``not_found``; anything else snake_cased."""
    if error_type is None:
        return "ok"
    name = error_type.removeprefix("Gitea") or error_type
    return _constant(re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())


class Metrics:
    def __init__(self, repo_labels: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.repo_labels = repo_labels
        registry = self.registry
        self.http_requests = Counter(
            "aegis_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "aegis_http_request_duration_seconds",
            "Time to answer an HTTP request (an event stream: how long it stayed open).",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.tool_calls = Counter(
            "aegis_tool_calls",
            "Tool calls, by tool, outcome (success, error, denied) and reason.",
            ["tool", "outcome", "reason"],
            registry=registry,
        )
        self.tool_duration = Histogram(
            "aegis_tool_call_duration_seconds",
            "Tool call latency, by tool.",
            ["tool"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.auth = Counter(
            "aegis_auth",
            "Authentication decisions: 'success' or the refusal's audit reason.",
            ["outcome"],
            registry=registry,
        )
        self.gitea_requests = Counter(
            "aegis_gitea_requests",
            "Calls to Gitea (retries included), by endpoint template and outcome.",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.gitea_duration = Histogram(
            "aegis_gitea_request_duration_seconds",
            "Gitea call latency (retries and waiting for a connection included), by endpoint.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.gitea_repo_requests = (
            Counter(
                "aegis_gitea_repository_requests",
                "Successful Gitea calls per repository (METRICS_REPO_LABELS opted in).",
                ["repository"],
                registry=registry,
            )
            if repo_labels
            else None
        )
        self._tools: frozenset[str] = frozenset()
        self._routes: dict[type, str] = {}
        #: Labelled children by the hooks' own arguments: ``.labels()`` (label checks, a lock,
        #: a dict of tuples) and ``_constant``'s regex ran several times per call.
        self._children: dict[tuple, Any] = {}
        self._ctx: AppContext | None = None
        #: With STATE_URL, what the last ``read_shared_state`` found: whether Redis answered,
        #: and the limiter's (tracked, blocked) clients across every replica.
        self._state_available = False
        self._shared_limiter_levels: tuple[int, int] | None = None
        registry.register(_LiveState(self))

    # --- wiring ----------------------------------------------------------------------------

    def watch(self, ctx: AppContext, tool_names: Iterable[str] = ()) -> None:
        """Read levels from ``ctx`` at scrape time; only ``tool_names`` become tool labels."""
        self._ctx = ctx
        self._tools = frozenset(tool_names)
        self._children.clear()  # tool labels depend on the names

    def set_routes(self, handlers: Iterable[tuple[str, type]]) -> None:
        """Handler class → route template, from the application's route table."""
        for pattern, handler_class in handlers:
            self._routes.setdefault(handler_class, pattern.rstrip("?").rstrip("/$") or "/")
        self._children.clear()  # route labels depend on the table

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def read_shared_state(self, timeout: float = SHARED_READ_TIMEOUT) -> None:
        """With ``STATE_URL``: read the levels kept in Redis for the next exposition."""
        ctx = self._ctx
        if ctx is None or ctx.shared_limiter is None:
            return
        try:
            levels = await ctx.shared_limiter.levels(timeout)
        except StateUnavailable:
            self._state_available, self._shared_limiter_levels = False, None
            return
        self._state_available, self._shared_limiter_levels = True, levels

    # --- hooks -----------------------------------------------------------------------------

    def _cached(self, key: tuple, make: Any) -> Any:
        """The children (counter, histogram...) ``make()`` returns for ``key``, made once.

        Keys are the hooks' arguments, which are code constants (routes, tools, statuses,
        reasons, endpoints); past ``_MAX_CACHED`` of them the children are looked up every
        time, so an unexpected value can never grow this cache without bound.
        """
        children = self._children.get(key)
        if children is None:
            children = make()
            if len(self._children) < _MAX_CACHED:
                self._children[key] = children
        return children

    def observe_request(self, handler: Any) -> None:
        """Called from the application's log function once per answered request."""
        handler_class, method, status = type(handler), handler.request.method, handler.get_status()

        def make() -> tuple:
            route = self._routes.get(handler_class, "unmatched")
            label = method if method in _METHODS else "other"
            return (
                self.http_requests.labels(route, label, str(status)),
                self.http_duration.labels(route),
            )

        count, duration = self._cached(("http", handler_class, method, status), make)
        count.inc()
        duration.observe(handler.request.request_time())

    def observe_tool_call(
        self, *, tool: str, status: str, duration_ms: float, reason: str | None = None
    ) -> None:
        def make() -> tuple:
            name = tool if tool in self._tools else "unknown"
            return (
                self.tool_calls.labels(name, _constant(status), _constant(reason, "none")),
                self.tool_duration.labels(name),
            )

        count, duration = self._cached(("tool", tool, status, reason), make)
        count.inc()
        duration.observe(duration_ms / 1000.0)

    def observe_auth(self, outcome: str) -> None:
        self._cached(("auth", outcome), lambda: self.auth.labels(_constant(outcome))).inc()

    def observe_gitea(
        self, endpoint: str, seconds: float, error_type: str | None, path: str = ""
    ) -> None:
        """Called by the Gitea client once per call; ``endpoint`` is its template name."""

        def make() -> tuple:
            name = _constant(endpoint)
            return (
                self.gitea_requests.labels(name, _gitea_outcome(error_type)),
                self.gitea_duration.labels(name),
            )

        count, duration = self._cached(("gitea", endpoint, error_type), make)
        count.inc()
        duration.observe(seconds)
        if self.gitea_repo_requests is not None and error_type is None:
            match = _REPO_PATH.match(path)
            if match and match.group(1) != "issues":
                repository = f"{unquote(match.group(1))}/{unquote(match.group(2))}".lower()
                self.gitea_repo_requests.labels(repository).inc()


class _LiveState:
    """Levels read from the running server at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> list:
        return []  # dynamic: nothing to check for clashes at registration

    def collect(self) -> Iterable[Any]:
        ctx = self._metrics._ctx
        if ctx is not None:
            yield from self._limiter(ctx)
            if ctx.shared_calls is not None:
                calls = ctx.shared_calls.held()  # the slots this replica holds in Redis
            else:
                calls = ctx.calls.in_use()
            yield _gauge(
                "aegis_tool_calls_in_progress",
                "Tool calls running in this process (each holds one of its key's "
                "MAX_CALLS_PER_KEY slots).",
                calls,
            )
            yield _gauge(
                "aegis_api_keys", "API keys configured (after the last reload).", len(ctx.keyring)
            )
            if ctx.sessions is not None:
                yield _gauge(
                    "aegis_mcp_sessions", "Streamable HTTP sessions open.", len(ctx.sessions)
                )
            if ctx.legacy_sessions is not None:
                yield _gauge(
                    "aegis_legacy_sse_sessions",
                    "Legacy SSE sessions open.",
                    len(ctx.legacy_sessions),
                )
            yield _gauge(
                "aegis_event_streams_open", "Event streams open.", len(ctx.requests.streams)
            )
            yield _gauge(
                "aegis_http_requests_in_flight",
                "HTTP requests being handled (event streams included).",
                ctx.requests.in_flight,
            )
        runtime = _log_runtime
        if runtime is not None:
            yield _gauge(
                "aegis_log_queue_depth",
                "Log and audit lines waiting for the writer thread.",
                runtime.queue_depth(),
            )
            audit_file = runtime.audit_file
            dropped = runtime.writer.audit_dropped_total + (
                audit_file.failures if audit_file else 0
            )
            family = CounterMetricFamily(
                "aegis_audit_lines_dropped",
                "Audit lines dropped: the log queue was full, or the audit file would not take them.",
            )
            family.add_metric([], dropped)
            yield family

    def _limiter(self, ctx: AppContext) -> Iterable[Any]:
        tracked_help = "Client IPs the failed-auth limiter currently remembers."
        blocked_help = "Client IPs currently blocked for too many failed authentications."
        if ctx.shared_limiter is None:
            limiter = ctx.limiter
            yield _gauge("aegis_auth_limiter_tracked_ips", tracked_help, len(limiter))
            blocked = getattr(limiter, "blocked_count", None)
            if blocked is not None:
                yield _gauge("aegis_auth_limiter_blocked_ips", blocked_help, blocked())
            return
        # STATE_URL: the limiter is Redis's, shared by every replica (the same value on each).
        metrics = self._metrics
        yield _gauge(
            "aegis_state_store_available",
            "Whether the shared state store (STATE_URL) answered this scrape (1) or not (0).",
            1 if metrics._state_available else 0,
        )
        if metrics._shared_limiter_levels is not None:
            tracked, blocked_now = metrics._shared_limiter_levels
            yield _gauge(
                "aegis_auth_limiter_tracked_ips", tracked_help + " (every replica's)", tracked
            )
            yield _gauge(
                "aegis_auth_limiter_blocked_ips", blocked_help + " (every replica's)", blocked_now
            )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
