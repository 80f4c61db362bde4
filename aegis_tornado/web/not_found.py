"""Every unknown path: authenticated like any other route, then a JSON 404."""

from __future__ import annotations

from .base import ApiError, BaseHandler


class NotFoundHandler(BaseHandler):
    def check_request(self) -> None:
        raise ApiError(404, f"No such endpoint: {self.request.path[:200]}")
