"""The repository gate: what Gitea is asked when a tool names a denied repository."""

from __future__ import annotations

import json

import pytest

from aegis_tornado.tools.gate import DECOY_OWNER, DECOY_REPO
from aegis_tornado.tools.validation import ValidationError, validate_owner, validate_repo

from ..conftest import with_settings


def test_the_decoy_is_a_name_no_gitea_repository_can_have():
    with pytest.raises(ValidationError, match="at most 40"):
        validate_owner(DECOY_OWNER)  # longer than Gitea allows
    with pytest.raises(ValidationError, match="in a row"):
        validate_owner(DECOY_OWNER[:9])  # and not a name Gitea creates at any length
    assert validate_repo(DECOY_REPO) == DECOY_REPO  # plain characters: nothing odd to route


@with_settings(repo_denylist=("northwind/lighthouse",))
@pytest.mark.gen_test(timeout=30)
async def test_a_denied_repository_is_asked_about_under_the_decoy_name(call, gitea):
    message = await call.error(
        "get_file_contents", owner="northwind", repo="lighthouse", path="README.md"
    )
    assert message.startswith("Repository northwind/lighthouse not found")
    assert gitea.requested_paths() == [f"/api/v1/repos/{DECOY_OWNER}/{DECOY_REPO}"]


@with_settings(repo_denylist=("northwind/lighthouse",))
@pytest.mark.gen_test(timeout=30)
async def test_an_answer_for_the_decoy_is_never_passed_on(call, gitea):
    """Were Gitea to answer the decoy (it cannot exist), the answer is dropped for a 404."""
    repository = {"full_name": "x/y", "name": "y", "default_branch": "main", "empty": False}
    gitea.faults.add("status", status=200, body=json.dumps(repository), path=DECOY_OWNER)
    message = await call.error("get_repository", owner="northwind", repo="lighthouse")
    assert message.startswith("Repository northwind/lighthouse not found")
    assert "x/y" not in message
