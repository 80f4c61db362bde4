"""The client against the double over real HTTP: happy paths, paging, encoding, redirects."""

from __future__ import annotations

import base64

import pytest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from aegis_tornado.gitea import GiteaBadResponse, GiteaClient, GiteaNotFound, Page, TreePage
from aegis_tornado.gitea_double import make_double_app

from .conftest import TOKEN

LH = {"owner": "northwind", "repo": "lighthouse"}


@pytest.mark.gen_test
async def test_version_user_and_repo(client, double):
    assert await client.get_json("version") == {"version": "1.27.0"}
    me = await client.get_json("user")
    assert me["login"] == "aegis-bot"
    repo = await client.get_json("repo", **LH)
    assert repo["full_name"] == "northwind/lighthouse"
    assert repo["permissions"] == {"admin": False, "push": False, "pull": True}
    record = double.requests[-1]
    assert record.auth == "header" and record.user == "aegis-bot"


@pytest.mark.gen_test
async def test_user_agent_and_token_header(client, monkeypatch):
    from aegis_tornado.gitea_double.app import ApiHandler

    seen = {}
    original_prepare = ApiHandler.prepare

    async def spying_prepare(self):
        seen.update(self.request.headers)
        seen["query"] = self.request.query
        await original_prepare(self)

    monkeypatch.setattr(ApiHandler, "prepare", spying_prepare)
    await client.get_json("version")
    assert seen["Authorization"] == f"token {TOKEN}"
    assert seen["User-Agent"].startswith("aegis-gitea-mcp/")
    assert TOKEN not in seen["query"]


@pytest.mark.gen_test
async def test_cookies_are_never_sent_back(client, monkeypatch):
    from aegis_tornado.gitea_double.app import ApiHandler

    cookies = []
    original_prepare = ApiHandler.prepare

    async def cookie_prepare(self):
        cookies.append(self.request.headers.get("Cookie"))
        self.set_cookie("i_like_gitea", "session-id")
        await original_prepare(self)

    monkeypatch.setattr(ApiHandler, "prepare", cookie_prepare)
    await client.get_json("version")
    await client.get_json("version")
    assert cookies == [None, None]


@pytest.mark.gen_test
async def test_anonymous_client_sees_only_public(make_client, double):
    anonymous = make_client(token=None)
    page = await anonymous.get_page("repo_search", limit=50)
    names = {r["full_name"] for r in page.items}
    assert "northwind/lighthouse" in names and "northwind/deploy-config" not in names
    with pytest.raises(GiteaNotFound):
        await anonymous.get_json("repo", owner="northwind", repo="deploy-config")
    assert all(r.auth is None for r in double.requests)


@pytest.mark.gen_test
async def test_repo_search_pages_with_link_header(client):
    first = await client.get_page("repo_search", page=1, limit=50)
    assert isinstance(first, Page)
    assert (first.page, first.limit, first.total, first.has_more, len(first.items)) == (
        1,
        50,
        56,
        True,
        50,
    )
    second = await client.get_page("repo_search", page=2, limit=50)
    assert (second.has_more, len(second.items), second.total) == (False, 6, 56)
    names = [r["full_name"] for r in first.items + second.items]
    assert len(set(names)) == 56
    assert "carol/incident-response" not in names and "northwind/hr-payroll" not in names


@pytest.mark.gen_test
async def test_limit_is_clamped_before_sending(client, double):
    page = await client.get_page("issues", page=0, limit=500, params={"state": "all"}, **LH)
    assert (page.page, page.limit, len(page.items), page.total, page.has_more) == (
        1,
        50,
        50,
        68,
        True,
    )
    assert ("limit", "50") in double.requests[-1].query and ("page", "1") in double.requests[
        -1
    ].query
    tiny = await client.get_page("issues", page=1, limit=-3, params={"state": "all"}, **LH)
    assert tiny.limit == 1 and len(tiny.items) == 1


@pytest.mark.gen_test
async def test_issue_paging_walks_every_issue_once(client):
    numbers, page_no = [], 1
    while True:
        page = await client.get_page(
            "issues", page=page_no, limit=30, params={"state": "all", "type": "issues"}, **LH
        )
        numbers += [i["number"] for i in page.items]
        if not page.has_more:
            break
        page_no += 1
    assert page_no == 3 and len(numbers) == 64 == len(set(numbers))
    assert not {12, 47, 58, 66} & set(numbers)


@pytest.mark.gen_test
async def test_commit_lists_use_x_hasmore(client):
    page = await client.get_page("commits", page=3, limit=5, **LH)
    assert (page.total, len(page.items), page.has_more) == (12, 2, False)
    page = await client.get_page(
        "commits", page=1, limit=5, params={"stat": False, "files": False}, **LH
    )
    assert page.has_more is True and page.items[0]["stats"] is None


@pytest.mark.gen_test
async def test_has_more_without_headers_falls_back_to_a_full_page(client):
    # A page of exactly `limit` items with no paging headers at all: assume there may be more.
    assert client._has_more(_reply({}), 1, 2, None, [1, 2]) is True
    assert client._has_more(_reply({}), 1, 2, None, [1]) is False
    assert client._has_more(_reply({"X-Total-Count": "4"}), 2, 2, 4, [1, 2]) is False
    assert (
        client._has_more(_reply({"Link": '<http://h/x?page=1>; rel="first"'}), 3, 2, None, [1, 2])
        is False
    )
    assert client._has_more(_reply({"X-HasMore": "true"}), 1, 2, None, []) is True


def _reply(headers):
    from aegis_tornado.gitea.client import _Reply

    return _Reply(200, headers, b"")


@pytest.mark.gen_test
async def test_tree_pages_with_per_page(client, double):
    seen, page_no = [], 1
    while True:
        tree = await client.get_tree(
            "northwind", "lighthouse", "main", recursive=True, page=page_no, per_page=10
        )
        assert isinstance(tree, TreePage) and len(tree.sha) == 40
        seen += [e["path"] for e in tree.items]
        if not tree.has_more:
            break
        page_no += 1
    assert tree.total == len(seen) > 30 and page_no > 3
    assert "src/lighthouse/checks/http/probe.py" in seen and "src/lighthouse/checks/http" in seen
    assert ("per_page", "10") in double.requests[-1].query
    assert not any(name == "limit" for name, _ in double.requests[-1].query)


@pytest.mark.gen_test
async def test_contents_file_directory_and_refs(client):
    readme = await client.get_json("contents", filepath="README.md", **LH)
    assert readme["type"] == "file" and base64.b64decode(readme["content"]).startswith(
        b"# Lighthouse"
    )
    listing = await client.get_json(
        "contents", filepath="src/lighthouse/checks", params={"ref": "v1.0.0"}, **LH
    )
    assert sorted(e["name"] for e in listing) == ["__init__.py", "dns", "http"]
    root = await client.get_json("contents_root", **LH)
    assert {"README.md", ".env", "deploy", "certs"} <= {e["name"] for e in root}
    probe_then = await client.get_json(
        "contents", filepath="src/lighthouse/checks/http/probe.py", params={"ref": "v1.1.0"}, **LH
    )
    probe_now = await client.get_json(
        "contents", filepath="src/lighthouse/checks/http/probe.py", **LH
    )
    assert probe_then["sha"] != probe_now["sha"]
    with pytest.raises(GiteaNotFound):
        await client.get_json(
            "contents", filepath="README.md", params={"ref": "no-such-branch"}, **LH
        )


@pytest.mark.gen_test
async def test_paths_with_spaces_and_unicode_are_encoded(client, double):
    with pytest.raises(GiteaNotFound):
        await client.get_json("contents", filepath="docs/naïve file?.md", **LH)
    assert (
        double.requests[-1].path
        == "/api/v1/repos/northwind/lighthouse/contents/docs/na%C3%AFve%20file%3F.md"
    )
    with pytest.raises(GiteaNotFound):
        await client.get_json("repo", owner="northwind", repo="lighthouse/../../admin")
    assert double.requests[-1].path == "/api/v1/repos/northwind/lighthouse%2F..%2F..%2Fadmin"


@pytest.mark.gen_test
async def test_branch_names_with_slashes_reach_the_tree(client):
    tree = await client.get_tree("northwind", "lighthouse", "feature/http2-probes")
    assert not tree.has_more and any(e["path"] == "pyproject.toml" for e in tree.items)


@pytest.mark.gen_test
async def test_diffs_are_text(client):
    diff = await client.get_text("pull_diff", index=47, diffType="diff", **LH)
    assert diff.startswith("diff --git a/pyproject.toml b/pyproject.toml")
    patch = await client.get_text("commit_diff", sha="v1.0.0", diffType="patch", **LH)
    assert (
        patch.startswith("From ") and "Subject: [PATCH] Add logo and documentation index" in patch
    )
    with pytest.raises(ValueError):
        await client.get_json("pull_diff", index=47, diffType="diff", **LH)
    with pytest.raises(ValueError):
        await client.get_text("repo", **LH)


@pytest.mark.gen_test
async def test_issues_pulls_comments_releases(client):
    issue = await client.get_json("issue", index=47, **LH)
    assert issue["pull_request"] is not None
    pull = await client.get_json("pull", index=12, **LH)
    assert pull["merged"] is True and pull["state"] == "closed"
    files = await client.get_page("pull_files", index=12, limit=50, **LH)
    assert {f["filename"] for f in files.items} == {
        "src/lighthouse/checks/dns/resolver.py",
        "tests/test_dns.py",
    }
    comments = await client.get_json("issue_comments", index=3, **LH)
    assert [c["user"]["login"] for c in comments] == ["bob", "alice"]
    releases = await client.get_page("releases", limit=10, **LH)
    assert [r["tag_name"] for r in releases.items] == [
        "v1.3.0-rc1",
        "v1.2.0",
        "v1.1.0",
        "v1.0.0",
    ]  # no draft
    found = await client.get_page(
        "issues_search", limit=50, params={"q": "secrets", "state": "all"}
    )
    assert [i["number"] for i in found.items] == [4]


@pytest.mark.gen_test
async def test_unknown_endpoint_and_reserved_query_are_programming_errors(client, double):
    with pytest.raises(ValueError):
        await client.get_json("admin_users")
    with pytest.raises(ValueError):
        await client.get_json("version", params={"token": "x"})
    with pytest.raises(ValueError):
        await client.get_json("version", params={"access_token": "x"})
    with pytest.raises(ValueError):
        await client.get_page("repo", **LH)
    with pytest.raises(ValueError):
        await client.get_page("issues", params={"limit": 5}, **LH)
    assert double.requests == []


@pytest.mark.gen_test
async def test_renamed_repository_redirect_is_followed(client, double):
    repo = await client.get_json("repo", owner="northwind", repo="beacon")
    assert repo["full_name"] == "northwind/lighthouse"
    assert [r.status for r in double.requests] == [307, 200]
    assert double.requests[1].auth == "header"


@pytest.mark.gen_test
async def test_redirect_into_a_repository_the_guard_refuses_is_not_followed(make_client, double):
    asked = []

    def guard(owner: str, repo: str) -> bool:
        asked.append((owner, repo))
        return repo.lower() != "lighthouse"

    client = make_client(repository_guard=guard)
    with pytest.raises(GiteaNotFound) as caught:
        await client.get_json("repo", owner="northwind", repo="beacon")
    assert "lighthouse" not in str(caught.value)
    with pytest.raises(GiteaNotFound):
        await client.get_page("issues", owner="northwind", repo="beacon")
    assert asked == [("northwind", "lighthouse")] * 2
    # Only the old name was ever requested: the renamed (denied) repository never was.
    assert [r.path for r in double.requests] == [
        "/api/v1/repos/northwind/beacon",
        "/api/v1/repos/northwind/beacon/issues",
    ]
    allowed = make_client(repository_guard=lambda owner, repo: True)
    assert (await allowed.get_json("repo", owner="northwind", repo="beacon"))[
        "name"
    ] == "lighthouse"


@pytest.mark.gen_test
async def test_cross_host_redirect_is_not_followed(client, app, double):
    app.faults.add(
        "redirect", location="http://evil.example/api/v1/repos/northwind/lighthouse", times=1
    )
    with pytest.raises(GiteaBadResponse, match="not followed") as caught:
        await client.get_json("repo", **LH)
    assert "evil.example" not in str(caught.value)
    app.faults.add("redirect", location="/elsewhere/repos/northwind/lighthouse", times=1)
    with pytest.raises(GiteaBadResponse, match="not followed"):
        await client.get_json("repo", **LH)
    assert len(double.requests) == 2


@pytest.mark.gen_test
async def test_base_url_with_sub_path(io_loop):
    sock, port = bind_unused_port()
    app = make_double_app(token=TOKEN, prefix="/gitea")
    server = HTTPServer(app)
    server.add_socket(sock)
    client = GiteaClient(f"http://127.0.0.1:{port}/gitea/", TOKEN, timeout=2)
    try:
        repo = await client.get_json("repo", **LH)
        assert repo["html_url"] == f"http://127.0.0.1:{port}/gitea/northwind/lighthouse"
        page = await client.get_page("repo_search", limit=50)
        assert page.has_more
        # a trailing /api/v1 in the configured URL is tolerated
        again = GiteaClient(f"http://127.0.0.1:{port}/gitea/api/v1", TOKEN, timeout=2)
        assert (await again.get_json("version"))["version"] == "1.27.0"
        again.close()
        assert all(r.path.startswith("/gitea/api/v1/") for r in app.double.requests)
    finally:
        client.close()
        server.stop()


def test_constructor_validates_and_hides_the_token():
    for bad in ("ftp://h", "h:3000", "https://user:pw@h", "https://h/?x=1"):
        with pytest.raises(ValueError):
            GiteaClient(bad)
    for bad_token in ("", "a b", "tok\r\nX-Evil: 1"):
        with pytest.raises(ValueError) as caught:
            GiteaClient("https://h", bad_token)
        assert bad_token not in str(caught.value) or bad_token == ""
    client = GiteaClient("https://h/gitea/", "s3cr3t-token")
    try:
        assert "s3cr3t-token" not in repr(client) and "s3cr3t-token" not in repr(
            client._session.auth
        )
        assert client.base_url == "https://h/gitea"
        # default deadline: every attempt may time out once, plus the backoff caps
        assert client.deadline == pytest.approx(3 * 10 + 0.25 + 0.5 + 1.0)
    finally:
        client.close()
