"""The double behaves like Gitea 1.27: visibility, auth, paging, refs, trees, contents, issues."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from aegis_tornado.gitea_double import BOT_LOGIN, DEMO_TOKEN, build_dataset

from .conftest import ALICE, CAROL, REPO_ONLY

LH = "/api/v1/repos/northwind/lighthouse"
INVISIBLE = ["carol/incident-response", "northwind/hr-payroll"]


# -- visibility ---------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_bot_sees_public_and_shared_private_repos(api):
    data = (await api.json("/api/v1/repos/search?limit=50"))["data"]
    data += (await api.json("/api/v1/repos/search?limit=50&page=2"))["data"]
    names = {r["full_name"] for r in data}
    assert len(names) == 56
    assert {
        "northwind/lighthouse",
        "northwind/deploy-config",
        "alice/notes",
        "alice/dotfiles",
        "northwind/empty-sandbox",
    } <= names
    assert not set(INVISIBLE) & names
    private = {r["full_name"] for r in data if r["private"]}
    assert private == {"northwind/deploy-config", "alice/notes"}


@pytest.mark.gen_test
@pytest.mark.parametrize("full_name", INVISIBLE)
@pytest.mark.parametrize(
    "suffix",
    ["", "/branches", "/contents/README.md", "/issues", "/commits", "/git/trees/main", "/releases"],
)
async def test_invisible_repos_are_404_everywhere(api, full_name, suffix):
    response = await api.get(f"/api/v1/repos/{full_name}{suffix}")
    assert response.code == 404
    assert json.loads(response.body)["message"] == "not found"


@pytest.mark.gen_test
async def test_invisible_repos_are_absent_from_issue_search(api):
    found = await api.json("/api/v1/repos/issues/search?state=all&limit=50&q=post-mortem")
    assert found == []
    carol = await api.json("/api/v1/repos/issues/search?state=all&limit=50&q=post-mortem", CAROL)
    assert [i["repository"]["full_name"] for i in carol] == ["carol/incident-response"]


@pytest.mark.gen_test
async def test_owners_and_teams_grant_access(api):
    await api.json("/api/v1/repos/carol/incident-response", CAROL)
    await api.json("/api/v1/repos/northwind/hr-payroll", CAROL)  # finance team
    repo = await api.json("/api/v1/repos/northwind/hr-payroll", ALICE)  # org owner
    assert repo["permissions"] == {"admin": True, "push": True, "pull": True}
    await api.json("/api/v1/repos/carol/incident-response", ALICE, expect=404)


@pytest.mark.gen_test
async def test_anonymous_sees_public_only(api):
    assert (await api.json("/api/v1/repos/northwind/lighthouse", None))["private"] is False
    await api.json("/api/v1/repos/northwind/deploy-config", None, expect=404)
    page = await api.get("/api/v1/repos/search?limit=1", None)
    assert page.headers["X-Total-Count"] == "54"
    user = (await api.json("/api/v1/repos/northwind/lighthouse", None))["owner"]
    assert user["email"] == ""


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("scheme", ["token", "Bearer", "bearer", "TOKEN"])
async def test_token_schemes(api, scheme):
    assert (await api.json("/api/v1/user", DEMO_TOKEN, scheme=scheme))["login"] == BOT_LOGIN


@pytest.mark.gen_test
async def test_basic_auth_with_token_as_password(api):
    basic = base64.b64encode(f"aegis-bot:{DEMO_TOKEN}".encode()).decode()
    assert (await api.json("/api/v1/user", basic, scheme="Basic"))["login"] == BOT_LOGIN


@pytest.mark.gen_test
async def test_wrong_token_is_401_even_on_public_routes(api):
    for path in ("/api/v1/repos/northwind/lighthouse", "/api/v1/version", "/api/v1/user"):
        response = await api.get(path, "not-a-token")
        assert response.code == 401
        body = json.loads(response.body)
        assert set(body) == {"message", "url"} and "not-a-token" not in body["message"]


@pytest.mark.gen_test
async def test_user_requires_a_token(api):
    body = await api.json("/api/v1/user", None, expect=401)
    assert body["message"] == "token is required"
    me = await api.json("/api/v1/user")
    assert me["email"] == "aegis-bot@northwind.example" and me["username"] == BOT_LOGIN


@pytest.mark.gen_test
async def test_missing_scope_is_403(api):
    body = await api.json(f"{LH}/issues", REPO_ONLY, expect=403)
    assert "required=[read:issue]" in body["message"]
    await api.json(f"{LH}/pulls", REPO_ONLY)  # pulls need read:repository only
    await api.json("/api/v1/user", REPO_ONLY, expect=403)


@pytest.mark.gen_test
async def test_query_token_is_accepted_and_recorded_as_such(api, double):
    assert (await api.json(f"/api/v1/user?token={DEMO_TOKEN}", None))["login"] == BOT_LOGIN
    assert double.requests[-1].auth == "query"


# -- paging ---------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_limit_defaults_and_clamps(api):
    for query, expected in [
        ("", 30),
        ("?limit=0", 30),
        ("?limit=-5", 30),
        ("?limit=7", 7),
        ("?limit=500", 50),
        ("?limit=abc", 30),
    ]:
        sep = "&" if query else "?"
        items = await api.json(f"{LH}/issues{query}{sep}state=all")
        assert len(items) == expected, query
    first = await api.json(f"{LH}/issues?state=all&limit=5&page=0")
    again = await api.json(f"{LH}/issues?state=all&limit=5&page=1")
    assert first == again


@pytest.mark.gen_test
async def test_link_header_like_gitea(api):
    response = await api.get(
        f"{LH}/issues?state=all&limit=10&page=3", headers={"Host": "git.example.com:3000"}
    )
    root = "http://git.example.com:3000/api/v1/repos/northwind/lighthouse/issues"
    assert response.headers["X-Total-Count"] == "68"
    assert response.headers["Link"] == (
        f'<{root}?limit=10&page=4&state=all>; rel="next",'
        f'<{root}?limit=10&page=7&state=all>; rel="last",'
        f'<{root}?limit=10&page=1&state=all>; rel="first",'
        f'<{root}?limit=10&page=2&state=all>; rel="prev"'
    )
    last = await api.get(f"{LH}/issues?state=all&limit=10&page=7")
    assert 'rel="next"' not in last.headers["Link"] and 'rel="prev"' in last.headers["Link"]
    single = await api.get(f"{LH}/issues?state=all&limit=50&type=pulls")
    assert "Link" not in single.headers and single.headers["X-Total-Count"] == "4"
    beyond = await api.get(f"{LH}/issues?state=all&limit=50&page=9")
    assert json.loads(beyond.body) == []


@pytest.mark.gen_test
async def test_commit_list_headers(api):
    response = await api.get(f"{LH}/commits?limit=5&page=2")
    h = response.headers
    assert (h["X-Page"], h["X-PerPage"], h["X-Total"], h["X-PageCount"], h["X-HasMore"]) == (
        "2",
        "5",
        "12",
        "3",
        "true",
    )
    assert h["X-Total-Count"] == "12" and 'rel="next"' in h["Link"]
    last = await api.get(f"{LH}/commits?limit=5&page=3")
    assert last.headers["X-HasMore"] == "false" and len(json.loads(last.body)) == 2


# -- git: refs, trees, contents, commits, diffs -----------------------------------------------------


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.mark.gen_test
async def test_tree_paging_and_truncation(api):
    whole = await api.json(f"{LH}/git/trees/main?recursive=true")
    assert whole["truncated"] is False and whole["total_count"] == len(whole["tree"]) > 30
    page1 = await api.json(f"{LH}/git/trees/main?recursive=1&per_page=10&page=1")
    assert page1["truncated"] is True and len(page1["tree"]) == 10 and page1["page"] == 1
    assert page1["tree"] == whole["tree"][:10]
    last_page = -(-whole["total_count"] // 10)
    tail = await api.json(f"{LH}/git/trees/main?recursive=1&per_page=10&page={last_page}")
    assert tail["truncated"] is False
    beyond = await api.json(f"{LH}/git/trees/main?recursive=1&per_page=10&page={last_page + 1}")
    assert beyond["tree"] is None and beyond["truncated"] is False
    top = await api.json(f"{LH}/git/trees/main")
    assert all("/" not in e["path"] for e in top["tree"])
    src = next(e for e in top["tree"] if e["path"] == "src")
    assert src["type"] == "tree" and src["mode"] == "040000"
    sub = await api.json(f"{LH}/git/trees/{src['sha']}")
    assert sub["sha"] == src["sha"] and [e["path"] for e in sub["tree"]] == ["lighthouse"]
    nested = {e["path"] for e in whole["tree"]}
    assert "src/lighthouse/checks/http/probe.py" in nested  # four levels deep


@pytest.mark.gen_test
async def test_contents_file_and_directory(api):
    readme = await api.json(f"{LH}/contents/README.md")
    data = base64.b64decode(readme["content"])
    assert (
        readme["encoding"] == "base64"
        and readme["size"] == len(data)
        and readme["sha"] == _git_blob_sha(data)
    )
    assert readme["download_url"].endswith("/northwind/lighthouse/raw/branch/main/README.md")
    assert readme["html_url"].endswith("/northwind/lighthouse/src/branch/main/README.md")
    listing = await api.json(f"{LH}/contents/src/lighthouse")
    assert all(e["content"] is None and e["encoding"] is None for e in listing)
    assert {e["type"] for e in listing} == {"file", "dir"}
    assert [e["name"] for e in listing] == sorted(e["name"] for e in listing)
    root = await api.json(f"{LH}/contents")
    assert root == await api.json(f"{LH}/contents/")


@pytest.mark.gen_test
async def test_contents_by_branch_tag_and_sha(api):
    commits = await api.json(f"{LH}/commits?limit=50")
    head = commits[0]["sha"]
    assert (await api.json(f"{LH}/branches?limit=1"))[0]["commit"]["id"] == head
    by_branch = await api.json(f"{LH}/contents/src/lighthouse/__init__.py?ref=main")
    by_sha = await api.json(f"{LH}/contents/src/lighthouse/__init__.py?ref={head}")
    by_short = await api.json(f"{LH}/contents/src/lighthouse/__init__.py?ref={head[:10]}")
    assert by_branch["sha"] == by_sha["sha"] == by_short["sha"]
    old = await api.json(f"{LH}/contents/src/lighthouse/__init__.py?ref=v1.0.0")
    assert base64.b64decode(old["content"]) == b'__version__ = "1.0.0"\n'
    assert "/src/tag/v1.0.0/" in old["html_url"]
    await api.json(f"{LH}/contents/README.md?ref=nope", expect=404)
    await api.json(
        f"{LH}/contents/tools/backup/backup_to_s3.sh?ref=v1.0.0", expect=404
    )  # not yet added
    await api.json(f"{LH}/contents/no/such/file", expect=404)


@pytest.mark.gen_test
async def test_fixture_files_for_the_policy_layer(api):
    async def raw(path: str) -> bytes:
        return base64.b64decode((await api.json(f"{LH}/contents/{path}"))["content"])

    png = await raw("docs/images/logo.png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    big = await api.json(f"{LH}/contents/data/sample-metrics.csv")
    assert big["size"] > 100_000
    for sensitive in (".env", "deploy/id_rsa", "certs/server.pem"):
        assert await raw(sensitive)
    roles = (await raw("src/lighthouse/auth/roles.py")).decode()
    assert {"\u200b", "\u202e", "\u2066", "\u2069"} <= set(roles)
    backup = (await raw("tools/backup/backup_to_s3.sh")).decode()
    assert re.search(r"AKIA[0-9A-Z]{16}", backup)
    assert "aws_secret_access_key = " in backup and "-----BEGIN RSA PRIVATE KEY-----" in backup
    assert (
        "EXAMPLE" in backup
        and "FAKE"
        in base64.b64decode(
            backup.split("-----\n")[1].split("\n-----")[0].replace("\n", "")
        ).decode()
    )


@pytest.mark.gen_test
async def test_commit_and_diff_agree(api):
    commit = await api.json(f"{LH}/git/commits/v1.1.0")
    assert commit["commit"]["message"].startswith("Add nightly S3 backup script")
    assert {f["filename"] for f in commit["files"]} == {
        "tools/backup/backup_to_s3.sh",
        "pyproject.toml",
        "src/lighthouse/__init__.py",
    }
    diff = await api.get(f"{LH}/git/commits/{commit['sha']}.diff")
    assert diff.headers["Content-Type"].startswith("text/plain")
    text = diff.body.decode()
    assert text.count("diff --git ") == 3 and "new file mode 100755" in text
    added = sum(
        1 for line in text.splitlines() if line.startswith("+") and not line.startswith("+++")
    )
    assert added == commit["stats"]["additions"]
    tree = await api.json(f"{LH}/git/trees/{commit['commit']['tree']['sha']}")
    assert tree["sha"] == commit["commit"]["tree"]["sha"]
    binary = await api.get(f"{LH}/git/commits/v1.0.0.diff")
    assert "Binary files /dev/null and b/docs/images/logo.png differ" in binary.body.decode()
    lean = await api.json(f"{LH}/git/commits/main?stat=false&files=false")
    assert lean["stats"] is None and lean["files"] is None
    await api.json(f"{LH}/git/commits/deadbeefdeadbeef", expect=404)
    await api.json(f"{LH}/git/commits/main..dev", expect=422)


@pytest.mark.gen_test
async def test_commit_filters(api):
    docs = await api.json(f"{LH}/commits?path=docs/alerting.md&limit=50")
    assert [c["commit"]["message"].splitlines()[0] for c in docs] == [
        "Document alert routing rules",
        "Add alert routing with Slack and e-mail notifiers",
    ]
    since = await api.json(f"{LH}/commits?since=2026-01-01T00:00:00Z")
    assert len(since) == 1
    develop_only = await api.json(f"{LH}/commits?sha=develop&not=main")
    assert [c["commit"]["message"] for c in develop_only] == ["WIP: dashboard skeleton\n"]


@pytest.mark.gen_test
async def test_branches_and_tags(api):
    branches = await api.json(f"{LH}/branches")
    assert [b["name"] for b in branches][0] == "main" and len(branches) == 6
    assert branches[0]["protected"] is True and branches[0]["user_can_push"] is False
    assert [b["name"] for b in await api.json(f"{LH}/branches?q=feature")] == [
        "feature/http2-probes"
    ]
    tags = await api.json(f"{LH}/tags")
    assert [t["name"] for t in tags] == ["v1.3.0-rc1", "v1.2.0", "v1.1.0", "v1.0.0"]
    annotated = tags[1]
    assert (
        annotated["id"] != annotated["commit"]["sha"] and annotated["message"] == "Lighthouse 1.2.0"
    )
    assert tags[0]["id"] == tags[0]["commit"]["sha"]  # lightweight


@pytest.mark.gen_test
async def test_empty_repository(api):
    base = "/api/v1/repos/northwind/empty-sandbox"
    repo = await api.json(base)
    assert repo["empty"] is True and repo["has_code"] is False
    body = await api.json(f"{base}/commits", expect=409)
    assert body["message"] == "Git Repository is empty."
    await api.json(f"{base}/contents", expect=404)
    await api.json(f"{base}/contents/README.md", expect=404)
    assert await api.json(f"{base}/branches") == [] and await api.json(f"{base}/tags") == []


@pytest.mark.gen_test
async def test_renamed_repository_redirects(api):
    response = await api.get("/api/v1/repos/northwind/beacon/issues?state=all&limit=2")
    assert response.code == 307
    assert (
        response.headers["Location"]
        == "/api/v1/repos/northwind/lighthouse/issues?state=all&limit=2"
    )
    await api.json("/api/v1/repos/northwind/beacon", "not-a-token", expect=401)


# -- issues, pulls, releases, search --------------------------------------------------------------


@pytest.mark.gen_test
async def test_issues_and_pulls_share_the_index(api):
    everything = await api.json(f"{LH}/issues?state=all&limit=50")
    everything += await api.json(f"{LH}/issues?state=all&limit=50&page=2")
    numbers = sorted(i["number"] for i in everything)
    assert numbers == list(range(1, 69))
    pulls = {i["number"] for i in everything if i["pull_request"]}
    assert pulls == {12, 47, 58, 66}
    only_issues = await api.json(f"{LH}/issues?state=all&type=issues&limit=50")
    assert not any(i["pull_request"] for i in only_issues)
    default = await api.json(f"{LH}/issues?limit=50")
    assert default and all(i["state"] == "open" for i in default)
    assert any(i["pull_request"] for i in default)
    issue = await api.json(f"{LH}/issues/47")
    assert issue["pull_request"]["merged"] is False and issue["html_url"].endswith("/pulls/47")


@pytest.mark.gen_test
async def test_issue_filters(api):
    security = await api.json(f"{LH}/issues?state=all&labels=security&limit=50")
    assert {3, 4} <= {i["number"] for i in security}
    assert all(any(label["name"] == "security" for label in i["labels"]) for i in security)
    both = await api.json(f"{LH}/issues?state=all&labels=security,bug&limit=50")
    assert [i["number"] for i in both] == [3]
    hidden = await api.json(f"{LH}/issues?state=all&q=bidi")
    assert [i["number"] for i in hidden] == [3]
    assert "\u202e" in hidden[0]["body"] and "\u200b" in hidden[0]["body"]
    by_milestone = await api.json(f"{LH}/issues?state=all&milestones=v1.2.0")
    assert [i["number"] for i in by_milestone] == [12]
    comments = await api.json(f"{LH}/issues/3/comments")
    assert len(comments) == 2 and comments[0]["issue_url"].endswith("/issues/3")
    await api.json(f"{LH}/issues/999", expect=404)


@pytest.mark.gen_test
async def test_pulls(api):
    open_pulls = await api.json(f"{LH}/pulls")
    assert {p["number"] for p in open_pulls} == {47, 66}
    merged = await api.json(f"{LH}/pulls/12")
    assert (
        merged["merged"]
        and merged["merged_by"]["login"] == "alice"
        and merged["merge_commit_sha"] == merged["head"]["sha"]
    )
    draft = await api.json(f"{LH}/pulls/66")
    assert draft["draft"] is True and draft["merged_at"] is None
    files = await api.json(f"{LH}/pulls/47/files")
    assert merged_files_ok(files)
    diff = (await api.get(f"{LH}/pulls/47.diff")).body.decode()
    assert (
        diff.count("diff --git")
        == len(files)
        == (await api.json(f"{LH}/pulls/47"))["changed_files"]
    )
    patch = (await api.get(f"{LH}/pulls/47.patch")).body.decode()
    assert patch.count("Subject: [PATCH]") == 2
    await api.json(f"{LH}/pulls/3", expect=404)  # an issue, not a pull


def merged_files_ok(files):
    return {f["filename"] for f in files} == {
        "pyproject.toml",
        "src/lighthouse/checks/http/probe.py",
    } and all(f["changes"] == f["additions"] + f["deletions"] for f in files)


@pytest.mark.gen_test
async def test_releases_hide_drafts_from_readers(api):
    bot = await api.json(f"{LH}/releases")
    assert [r["tag_name"] for r in bot] == ["v1.3.0-rc1", "v1.2.0", "v1.1.0", "v1.0.0"]
    alice = await api.json(f"{LH}/releases", ALICE)
    assert alice[0]["draft"] is True
    pre = await api.json(f"{LH}/releases?pre-release=true")
    assert [r["tag_name"] for r in pre] == ["v1.3.0-rc1"]


@pytest.mark.gen_test
async def test_repo_search_filters(api):
    assert (await api.json("/api/v1/repos/search?q=deploy"))["data"][0][
        "full_name"
    ] == "northwind/deploy-config"
    plugins = await api.get("/api/v1/repos/search?q=plugin&limit=1")
    assert plugins.headers["X-Total-Count"] == "50"
    archived = (await api.json("/api/v1/repos/search?archived=true"))["data"]
    assert [r["full_name"] for r in archived] == ["northwind/legacy-monitor"]
    alice_id = (await api.json("/api/v1/repos/alice/dotfiles"))["owner"]["id"]
    mine = (await api.json(f"/api/v1/repos/search?uid={alice_id}&exclusive=true"))["data"]
    assert {r["full_name"] for r in mine} == {"alice/dotfiles", "alice/notes"}
    public = await api.get("/api/v1/repos/search?private=false&limit=1")
    assert public.headers["X-Total-Count"] == "54"
    newest = (await api.json("/api/v1/repos/search?sort=created&order=desc&limit=1"))["data"][0]
    assert newest["full_name"] == "northwind/empty-sandbox"
    topic = (await api.json("/api/v1/repos/search?q=monitoring&topic=true"))["data"]
    assert [r["full_name"] for r in topic] == ["northwind/lighthouse"]
    body = await api.json("/api/v1/repos/search?sort=vibes", expect=422)
    assert "Invalid sort mode" in body["message"]


# -- plumbing ------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_unknown_routes_and_methods_are_json_errors(api):
    for path in (
        "/api/v1/nope",
        "/api/v1/repos/northwind/lighthouse/wiki/revisions/Home",
        "/explore",
    ):
        body = await api.json(path, expect=404)
        assert body["message"] == "not found" and body["url"].endswith("/api/swagger")
    response = await api.get(f"{LH}/issues", method="POST", body={"title": "x"})
    assert response.code == 405 and json.loads(response.body)["url"].endswith("/api/swagger")


@pytest.mark.gen_test
async def test_request_record(api, double):
    await api.get(f"{LH}/contents/docs/a%20b.md?ref=main")
    await api.get("/api/v1/version", None)
    first, second = double.requests
    assert (first.method, first.path, first.query, first.auth, first.user, first.status) == (
        "GET",
        f"{LH}/contents/docs/a%20b.md",
        [("ref", "main")],
        "header",
        BOT_LOGIN,
        404,
    )
    assert first.api_path == "/repos/northwind/lighthouse/contents/docs/a%20b.md"
    assert (second.auth, second.user, second.status) == (None, None, 200)
    assert DEMO_TOKEN not in repr(first.to_dict())
    double.clear_requests()
    assert double.requests == []


def test_dataset_is_deterministic():
    a, b = build_dataset(), build_dataset()
    for ra, rb in zip(a.repos, b.repos, strict=False):
        assert ra.git.branches == rb.git.branches and ra.full_name == rb.full_name
    lh = a.repo("northwind", "lighthouse")
    assert len(lh.git.log(lh.git.branches["main"])) == 12
