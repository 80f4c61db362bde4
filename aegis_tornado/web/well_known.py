"""OAuth discovery: protected-resource metadata (RFC 9728, at both paths clients try) and
authorization-server metadata (RFC 8414). With OAuth off they are 404, so OAuth-capable clients
stop at our 401 message instead of starting a flow that does not exist."""

from __future__ import annotations

from .base import ApiError, BaseHandler


class _MetadataHandler(BaseHandler):
    public = True

    def set_default_headers(self) -> None:
        super().set_default_headers()
        # Browser-based clients (MCP Inspector) read metadata cross-origin; it is public.
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Access-Control-Allow-Headers", "MCP-Protocol-Version, Content-Type")

    def options(self) -> None:
        self.set_status(204)
        self.finish()

    def document(self) -> dict:
        raise NotImplementedError

    def get(self) -> None:
        if self.ctx.oauth is None:
            raise ApiError(404, f"No such endpoint: {self.request.path[:200]}")
        self.write(self.document())


class ProtectedResourceMetadataHandler(_MetadataHandler):
    def document(self) -> dict:
        return self.ctx.oauth.protected_resource_metadata()


class AuthorizationServerMetadataHandler(_MetadataHandler):
    def document(self) -> dict:
        return self.ctx.oauth.authorization_server_metadata()


default_handlers = [
    (r"/\.well-known/oauth-protected-resource", ProtectedResourceMetadataHandler),
    (r"/\.well-known/oauth-protected-resource/mcp", ProtectedResourceMetadataHandler),
    (r"/\.well-known/oauth-authorization-server", AuthorizationServerMetadataHandler),
]
