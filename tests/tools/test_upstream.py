"""Gitea's failures as the tool errors a model sees."""

from __future__ import annotations

import pytest

from aegis_tornado.gitea import (
    GiteaAuthError,
    GiteaBadRequest,
    GiteaBadResponse,
    GiteaEmptyRepository,
    GiteaError,
    GiteaNotFound,
    GiteaUnavailable,
)
from aegis_tornado.mcp.registry import ToolError
from aegis_tornado.tools.upstream import gitea_call


@pytest.mark.parametrize(
    ("error", "reason", "words"),
    [
        (GiteaNotFound("x"), "not_found", "File 'a' not found, or not visible"),
        (GiteaEmptyRepository("x"), "empty_repository", "The repository is empty"),
        (GiteaAuthError("bad token"), "gitea_auth", "bad token Tell the server's operator"),
        (GiteaUnavailable("503"), "gitea_unavailable", "Gitea is unavailable right now (503)"),
        (GiteaBadRequest("400"), "gitea_bad_request", "Gitea rejected the request: 400"),
        (GiteaBadResponse("junk"), "gitea_bad_response", "could not use: junk"),
        (GiteaError("odd"), "gitea_error", "Gitea call failed: odd"),
    ],
)
@pytest.mark.gen_test
async def test_each_gitea_failure_has_its_reason_and_words(error, reason, words):
    async def failing():
        raise error

    with pytest.raises(ToolError) as caught:
        await gitea_call(failing(), "File 'a'")
    assert caught.value.reason == reason and words in caught.value.message


@pytest.mark.gen_test
async def test_a_successful_call_passes_through():
    async def fine():
        return {"ok": True}

    assert await gitea_call(fine(), "x") == {"ok": True}
