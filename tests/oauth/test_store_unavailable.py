"""The OAuth store itself unreachable while the rest of Redis answers (the gate's limiter check
passes): the token check still fails closed, and the OAuth endpoints say
``temporarily_unavailable``. (tests/state/test_oauth_replicas.py kills the whole Redis.)"""

from __future__ import annotations

import httpx2
import pytest

from aegis_tornado.oauth.redis_store import RedisOAuthStore

from ..conftest import with_settings
from ..redis_server import free_port
from .test_endpoints import INIT, register, sign_in

pytestmark = [
    pytest.mark.parametrize("oauth_backend", ["redis"], indirect=True),
    with_settings(oauth_token_cache_ttl=0.0),  # every request looks its token up
]


@pytest.mark.gen_test(timeout=60)
async def test_a_token_that_cannot_be_looked_up_is_refused_503_never_let_through(
    mcp_base, ctx, app, http_server, logs
):
    tokens = await sign_in(mcp_base)
    live = ctx.oauth.store
    # Nothing listens there: the OAuth store's connection is refused, the limiter's is not.
    ctx.oauth.store = RedisOAuthStore(f"redis://127.0.0.1:{free_port()}/0", refresh_ttl=60)
    try:
        async with httpx2.AsyncClient(timeout=20) as http:
            for _ in range(3):
                reply = await http.post(
                    f"{mcp_base}/mcp",
                    json=INIT,
                    headers={
                        "Authorization": f"Bearer {tokens['access_token']}",
                        "Accept": "application/json, text/event-stream",
                    },
                )
                assert reply.status_code == 503, reply.text
                assert reply.headers["retry-after"] == "5"
            registered = await register(http, mcp_base)
            assert registered.status_code == 503
            assert registered.json()["error"] == "temporarily_unavailable"
            assert registered.headers["retry-after"] == "5"
    finally:
        ctx.oauth.store.close()
        ctx.oauth.store = live
    denied = logs.audit("access_denied")
    assert [r["during"] for r in denied] == ["oauth_token_check"] * 3
    assert all(r["reason"] == "state_unavailable" for r in denied)
    lines = logs.stdout_text()
    assert lines.count("oauth_store_unavailable") == 1  # once, not once per request
    assert "Traceback" not in lines and tokens["access_token"] not in lines
    # Back: the same token is accepted again.
    async with httpx2.AsyncClient(timeout=20) as http:
        reply = await http.post(
            f"{mcp_base}/mcp",
            json=INIT,
            headers={
                "Authorization": f"Bearer {tokens['access_token']}",
                "Accept": "application/json, text/event-stream",
            },
        )
        assert reply.status_code == 200
