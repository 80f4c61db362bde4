"""Every limit has one source: the schemas, validation and the Gitea client agree."""

from __future__ import annotations

import re

from aegis_tornado.gitea import MAX_PAGE_LIMIT, MAX_TREE_PER_PAGE
from aegis_tornado.gitea.client import GiteaClient
from aegis_tornado.tools import schemas, validation


def test_schemas_allow_exactly_what_validation_allows():
    assert schemas.OWNER["maxLength"] == validation.OWNER_MAX_LENGTH == 40
    assert schemas.REPO["maxLength"] == validation.REPO_MAX_LENGTH == 100
    assert schemas.REF["maxLength"] == validation.REF_MAX_BYTES
    assert schemas.PATH["maxLength"] == validation.PATH_MAX_BYTES
    assert schemas.SHA["minLength"] == validation.SHA_MIN_LENGTH
    assert schemas.SHA["maxLength"] == validation.SHA_MAX_LENGTH
    assert schemas.NUMBER["maximum"] == validation.MAX_NUMBER
    assert schemas.LINE["maximum"] == validation.MAX_LINE
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
