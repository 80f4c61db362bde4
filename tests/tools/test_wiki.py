"""list_wiki_pages and get_wiki_page through the server, against the double."""

from __future__ import annotations

import pytest

from aegis_tornado.gitea_double.operations import LEAKED_PASSWORD

from ..conftest import with_settings

LIGHTHOUSE = {"owner": "northwind", "repo": "lighthouse"}


@pytest.mark.gen_test
async def test_pages_are_listed_with_their_last_change(call):
    pages = await call("list_wiki_pages", **LIGHTHOUSE)
    assert [p["title"] for p in pages["items"]] == [
        "Home",
        "Deploy Guide",
        "On-call Runbook",
        "Release Process",
    ]
    assert (pages["total"], pages["has_more"]) == (4, False)
    runbook = pages["items"][2]
    assert runbook["page_name"] == "On-call-Runbook" and runbook["author"] == "carol"
    assert runbook["url"] == "https://git.example.com/northwind/lighthouse/wiki/On-call-Runbook"
    first = await call("list_wiki_pages", **LIGHTHOUSE, limit=1)
    assert len(first["items"]) == 1 and first["has_more"] is True


@pytest.mark.gen_test
async def test_a_page_is_read_by_name_or_title_and_its_secrets_redacted(call):
    page = await call("get_wiki_page", **LIGHTHOUSE, page_name="On-call-Runbook")
    assert page["content"].startswith("# On-call runbook")
    assert LEAKED_PASSWORD not in page["content"]
    assert page["sanitized"]["secrets_redacted"] == ["url-password"]
    by_title = await call("get_wiki_page", **LIGHTHOUSE, page_name="Deploy Guide")
    assert "ansible-playbook" in by_title["content"] and by_title["page_name"] == "Deploy-Guide"
    assert "not found" in await call.error("get_wiki_page", **LIGHTHOUSE, page_name="Nope")
    for bad in ("../secrets", "a/b", "x\u202ey", " "):
        assert "page_name" in await call.error("get_wiki_page", **LIGHTHOUSE, page_name=bad)


@with_settings(repo_denylist=("northwind/lighthouse",))
@pytest.mark.gen_test
async def test_a_denied_wiki_is_not_found(call, gitea):
    missing = await call.error("list_wiki_pages", owner="northwind", repo="no-such-repo")
    denied = await call.error("get_wiki_page", **LIGHTHOUSE, page_name="Home")
    assert denied == missing.replace("no-such-repo", "lighthouse")
    assert not [p for p in gitea.requested_paths() if "lighthouse" in p]
