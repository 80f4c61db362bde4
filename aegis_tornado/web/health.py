"""GET/HEAD /health: liveness for container health checks; public, no I/O."""

from __future__ import annotations

from .. import __version__
from .base import BaseHandler


class HealthHandler(BaseHandler):
    public = True

    def get(self) -> None:
        """GET /health -> {"status": "ok", "version": ...}."""
        self.set_header("Cache-Control", "no-cache")
        self.write({"status": "ok", "version": __version__})

    def head(self) -> None:
        self.set_header("Cache-Control", "no-cache")


default_handlers = [(r"/health", HealthHandler)]
