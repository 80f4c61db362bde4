"""GET /metrics: the Prometheus exposition, for scrapers only.

Never behind the API keys (a scraper is not an MCP client, and an MCP client has no business
reading the server's traffic): either on its own port (``METRICS_PORT``), or on the main port
behind its own key (``METRICS_KEY``), or not at all. A wrong metrics key is audited and counted
by the failed-auth limiter like a wrong API key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from tornado import web

from ..context import AppContext
from ..metrics import CONTENT_TYPE
from ..settings import Settings
from .base import _BEARER, ApiError, BaseHandler


class MetricsHandler(BaseHandler):
    public = True  # the API keys do not open it; the metrics key (if any) is checked below

    async def get(self) -> None:
        """GET /metrics -> Prometheus text format."""
        await self._check_metrics_key()
        metrics = self.ctx.metrics
        await metrics.read_shared_state()  # STATE_URL: the levels kept in Redis (bounded)
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(metrics.exposition())

    async def _check_metrics_key(self) -> None:
        configured = self.ctx.settings.metrics_key
        if configured is None:
            return
        ctx, ip = self.ctx, self.client_ip
        if ctx.shared_limiter is None:
            self._refuse_if_rate_limited(ctx.limiter.retry_after(ip))
        else:
            await self._check_shared_limit()
        match = _BEARER.match(self.request.headers.get("Authorization", ""))
        presented = match.group("key") if match else ""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        if match and hmac.compare_digest(digest, bytes.fromhex(configured.digest)):
            return
        if match:
            self._count_failure(ip)
        ctx.audit.auth_failure(
            reason="invalid_metrics_key" if match else "missing_metrics_key",
            client_ip=ip,
            user_agent=self.request.headers.get("User-Agent"),
            path=self.request.path,
        )
        self.refused_at_gate = True
        refusal = ApiError(
            401,
            "This endpoint needs the metrics key: 'Authorization: Bearer <METRICS_KEY>'",
            headers={"WWW-Authenticate": 'Bearer realm="aegis-gitea-mcp-metrics"'},
        )
        if self._failure_pending:
            refusal = await self._record_shared_failure(refusal)
        raise refusal


class _NoSuchPath(BaseHandler):
    public = True

    async def prepare(self) -> None:
        await super().prepare()
        if not self._finished:
            raise ApiError(404, "Only /metrics is served on this port")


def serves_on_main_port(settings: Settings) -> bool:
    """/metrics is on the main port only behind its own key, and only without METRICS_PORT."""
    return settings.metrics_port is None and settings.metrics_key is not None


def make_metrics_app(
    ctx: AppContext, log_function: Callable[[Any], None] | None = None
) -> web.Application:
    """The application of the separate metrics port: /metrics, nothing else."""
    return web.Application(
        [(r"/metrics", MetricsHandler)],
        default_handler_class=_NoSuchPath,
        log_function=log_function,
        aegis=ctx,
    )


default_handlers = [(r"/metrics", MetricsHandler)]
