"""With OAuth off (the default): discovery answers 404, /mcp's 401 carries no OAuth challenge,
so OAuth-capable clients show our message instead of starting a flow that does not exist.
And a Gitea scope string other than the exact read set refuses to start (matrix case 14)."""

from __future__ import annotations

import pytest

from aegis_tornado.gitea_double.oauth2 import effective_scopes
from aegis_tornado.settings import ConfigError, load_settings

from ..conftest import body_json


@pytest.fixture
def aegis_settings(tmp_path):
    # The shared default settings: OAuth off.
    from aegis_tornado.auth.keys import parse_key
    from aegis_tornado.settings import Settings

    from ..conftest import KEY

    return Settings(
        gitea_url="http://127.0.0.1:9",
        api_keys=(parse_key(KEY),),
        audit_log_path=str(tmp_path / "audit.log"),
    )


@pytest.fixture
def registry():
    from ..support import demo_tools

    return demo_tools()


@pytest.fixture
def ctx(aegis_settings, logs, registry):
    from aegis_tornado.assembly import build_context
    from aegis_tornado.auth.keys import KeyRing

    return build_context(aegis_settings, KeyRing(aegis_settings.api_keys), registry)


@pytest.mark.gen_test
async def test_discovery_is_404_and_the_challenge_has_no_oauth(api):
    for path in (
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/oauth/register",
    ):
        reply = await api.request(path, key=None)
        assert reply.code == 404, path
    unauthorized = await api.mcp({"jsonrpc": "2.0", "id": 1, "method": "ping"}, key=None)
    assert unauthorized.code == 401
    assert "resource_metadata" not in unauthorized.headers["WWW-Authenticate"]
    assert "Missing API key" in body_json(unauthorized)["message"]


def test_gitea_scope_string_is_fixed():
    with pytest.raises(ConfigError, match="GITEA_OAUTH_SCOPES"):
        load_settings(environ={"GITEA_OAUTH_SCOPES": "read:user read:repositroy read:issue"})
    with pytest.raises(ConfigError, match="GITEA_OAUTH_SCOPES"):
        load_settings(environ={"GITEA_OAUTH_SCOPES": "openid"})
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        load_settings(environ={"PUBLIC_URL": "http://mcp.example.com"})
    # Why: Gitea gives a misspelt or OIDC-only grant every scope (the double mimics it).
    assert effective_scopes("openid profile") == {"all"}
    assert effective_scopes("read:user read:repositroy") == {"all"}
    assert effective_scopes("read:user read:repository read:issue") == {
        "read:user",
        "read:repository",
        "read:issue",
    }
