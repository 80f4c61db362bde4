"""OAuth 2.1 for MCP clients: this server is their authorization server and resource server,
and delegates only the sign-in to Gitea (reference oauth.md §0.1).

* :mod:`.tokens` — opaque token formats and their hashes;
* :mod:`.store` — the SQLite store, used from one worker thread (never the event loop);
* :mod:`.redis_store` — the same interface in Redis (``STATE_URL``), shared by replicas;
* :mod:`.limits` — per-IP rates of registration and sign-in (in Redis with ``STATE_URL``);
* :mod:`.validator` — oauthlib's ``RequestValidator`` over the store (oauthlib owns the protocol);
* :mod:`.redirects` — redirect-URI rules and the registration trust policy;
* :mod:`.gitea_login` — the Gitea leg: authorize URL, code exchange, refresh, who signed in;
* :mod:`.vault` — users' Gitea tokens, encrypted at rest, one set per Gitea user, refreshed once;
* :mod:`.service` — the pieces together, as the HTTP handlers use them.
"""

from .service import OAuthService

__all__ = ["OAuthService"]
