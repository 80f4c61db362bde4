"""Every limit has one source: the schemas, validation and the Gitea client agree."""

from __future__ import annotations

import re

from aegis_tornado.gitea import MAX_PAGE_LIMIT, MAX_TREE_PER_PAGE
from aegis_tornado.gitea.client import GiteaClient
from aegis_tornado.tools import schemas, validation


def test_every_bound_a_schema_states_is_validations():
    assert schemas.REF["maxLength"] == validation.REF_MAX_BYTES
    assert schemas.PATH["maxLength"] == validation.PATH_MAX_BYTES
    assert schemas.SHA["minLength"] == validation.SHA_MIN_LENGTH
    assert schemas.SHA["maxLength"] == validation.SHA_MAX_LENGTH
    assert schemas.PAGE["maximum"] == validation.MAX_PAGE
    assert schemas.PAGE["default"] == validation.DEFAULT_PAGE
    assert schemas.LIMIT["maximum"] == validation.MAX_LIMIT == MAX_PAGE_LIMIT
    assert schemas.LIMIT["default"] == validation.DEFAULT_LIMIT


def test_the_client_clamps_to_the_same_limits():
    assert GiteaClient.get_page.__kwdefaults__["limit"] == MAX_PAGE_LIMIT
    assert GiteaClient.get_tree.__kwdefaults__["per_page"] == MAX_TREE_PER_PAGE


def test_tool_descriptions_state_the_real_page_limit(registry):
    for tool in registry:
        for stated in re.findall(r"limit 1-(\d+)", tool.description):
            assert int(stated) == MAX_PAGE_LIMIT, tool.name


def test_bounds_no_caller_meets_are_left_to_validation():
    # 22 tools repeat owner and repo: their lengths (and int32 numbers, ten-million lines) are
    # refused by validation with a clear error (tests/tools/test_validation.py, test_repos.py),
    # not stated in every schema of a tools/list that must stay under 16 KB.
    assert schemas.OWNER == schemas.REPO == {"type": "string"}
    assert schemas.NUMBER == schemas.LINE == {"type": "integer", "minimum": 1}
    assert validation.OWNER_MAX_LENGTH == 40 and validation.REPO_MAX_LENGTH == 100
