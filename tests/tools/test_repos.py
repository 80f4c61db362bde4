"""list_repositories, get_repository, list_branches, list_tags against the Gitea double."""

from __future__ import annotations

import pytest

from ..conftest import with_settings

LIST_KEYS = {"items", "page", "limit", "has_more", "total"}


@pytest.mark.gen_test
async def test_list_repositories_pages_through_everything_visible(call):
    first = await call("list_repositories", limit=50)
    assert set(first) == LIST_KEYS
    assert first["has_more"] is True and len(first["items"]) == 50 and first["total"] == 56
    second = await call("list_repositories", limit=50, page=2)
    assert second["has_more"] is False and len(second["items"]) == 6
    names = {r["full_name"] for r in first["items"] + second["items"]}
    assert len(names) == 56
    assert "northwind/deploy-config" in names  # private, shared with the bot
    assert "carol/incident-response" not in names  # private, not shared
    repo = next(
        r for r in first["items"] + second["items"] if r["full_name"] == "northwind/lighthouse"
    )
    assert repo["url"] == "https://git.example.com/northwind/lighthouse"
    assert repo["default_branch"] == "main"


@pytest.mark.gen_test
async def test_list_repositories_query(call):
    result = await call("list_repositories", query="dotfiles")
    assert [r["full_name"] for r in result["items"]] == ["alice/dotfiles"]


@with_settings(repo_denylist=("northwind/lighthouse", "alice/*"))
@pytest.mark.gen_test
async def test_denied_repositories_vanish_and_are_never_requested(call, gitea):
    listed = await call("list_repositories", limit=50)
    names = {r["full_name"] for r in listed["items"]}
    assert "northwind/lighthouse" not in names and not any(n.startswith("alice/") for n in names)
    assert listed["total"] is None  # Gitea's count would reveal hidden repositories
    missing = await call.error("get_repository", owner="northwind", repo="does-not-exist")
    for owner, repo in (
        ("northwind", "lighthouse"),
        ("alice", "notes"),
        ("NorthWind", "LightHouse"),
    ):
        for tool in (
            "get_repository",
            "list_branches",
            "list_tags",
            "list_commits",
            "list_issues",
            "list_releases",
            "get_file_tree",
        ):
            message = await call.error(tool, owner=owner, repo=repo)
            assert message == missing.replace("northwind/does-not-exist", f"{owner}/{repo}")
    requested = " ".join(gitea.requested_paths()).lower()
    assert "lighthouse" not in requested.replace("lighthouse-plugin", "")
    assert "/alice/" not in requested


@with_settings(repo_allowlist=("alice/*",))
@pytest.mark.gen_test
async def test_allowlist_limits_everything_to_it(call):
    listed = await call("list_repositories", limit=50)
    assert {r["full_name"] for r in listed["items"]} == {"alice/notes", "alice/dotfiles"}
    assert (await call("get_repository", owner="alice", repo="dotfiles"))["repo"] == "dotfiles"
    assert "not found" in await call.error("get_repository", owner="northwind", repo="lighthouse")


@pytest.mark.gen_test
async def test_get_repository(call):
    repo = await call("get_repository", owner="northwind", repo="lighthouse")
    assert repo["full_name"] == "northwind/lighthouse"
    assert repo["open_issues"] == 50 and repo["language"] == "Python"
    assert repo["url"] == "https://git.example.com/northwind/lighthouse"
    message = await call.error("get_repository", owner="carol", repo="incident-response")
    assert "not found, or not visible to the server's Gitea account" in message


@pytest.mark.gen_test
async def test_branches_and_tags(call):
    branches = await call("list_branches", owner="northwind", repo="lighthouse", limit=2)
    assert branches["has_more"] is True and len(branches["items"]) == 2
    main = next(
        b
        for b in (await call("list_branches", owner="northwind", repo="lighthouse", limit=50))[
            "items"
        ]
        if b["name"] == "main"
    )
    assert main["protected"] is True and len(main["commit_sha"]) == 40
    assert main["url"] == "https://git.example.com/northwind/lighthouse/src/branch/main"
    tags = await call("list_tags", owner="northwind", repo="lighthouse")
    assert {"v1.0.0", "v1.3.0-rc1"} <= {t["name"] for t in tags["items"]}


@pytest.mark.parametrize(
    "owner, repo, fragment",
    [
        ("../admin", "x", "owner"),
        ("northwind", "a/b", "repo"),
        ("northwind", "..", "repo"),
        ("x" * 41, "r", "owner"),
        ("northwind", "r" * 101, "repo"),
        ("nörth", "r", "owner"),
        ("northwind", "lighthouse.git", "repo"),
        ("north\x00wind", "r", "owner"),
    ],
)
@pytest.mark.gen_test
async def test_invalid_names_are_refused_before_gitea(call, gitea, owner, repo, fragment):
    message = await call.error("get_repository", owner=owner, repo=repo)
    assert fragment in message
    assert gitea.requested_paths() == []
