"""GET/HEAD /health: liveness for container health checks; public.

No I/O for one replica. With a shared store (STATE_URL) the answer says whether it answers a
PING (bounded by the store's one-second timeout): ``"status": "degraded"`` while it does not.
Still 200: every replica shares the one Redis, so restarting or draining this one would not
help; authentication meanwhile fails closed (503, docs/SCALING.md).
"""

from __future__ import annotations

from .. import __version__
from .base import BaseHandler


class HealthHandler(BaseHandler):
    public = True

    async def get(self) -> None:
        """GET /health -> {"status": "ok", "version": ...} (+ "state" with STATE_URL)."""
        self.set_header("Cache-Control", "no-cache")
        state = self.ctx.state
        if state is None:
            self.write({"status": "ok", "version": __version__})
            return
        available = await state.ping()
        self.write(
            {
                "status": "ok" if available else "degraded",
                "version": __version__,
                "state": {"store": "redis", "available": available},
            }
        )

    def head(self) -> None:
        self.set_header("Cache-Control", "no-cache")


default_handlers = [(r"/health", HealthHandler)]
