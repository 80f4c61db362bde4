"""The endpoint table and path building: spec-true templates, every value encoded as one segment."""

from __future__ import annotations

import re

import pytest

from aegis_tornado.gitea import ENDPOINTS, SHAPES, build_path
from aegis_tornado.gitea.endpoints import template_params

from . import spec


def test_spec_is_gitea_1_27():
    assert spec.spec()["info"]["version"] == "1.27.0"
    assert spec.spec()["basePath"] == "/api/v1"


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_every_template_is_a_get_in_the_spec(name):
    template = ENDPOINTS[name]
    assert template in spec.spec()["paths"], f"{name}: {template} is not a path of the spec"
    assert "get" in spec.spec()["paths"][template]
    declared = {
        p["name"] for p in spec.operation(template).get("parameters", []) if p.get("in") == "path"
    }
    assert declared == set(template_params(name))


def test_the_required_names_exist_with_their_exact_templates():
    required = {
        "repo": "/repos/{owner}/{repo}",
        "repo_search": "/repos/search",
        "tree": "/repos/{owner}/{repo}/git/trees/{sha}",
        "contents": "/repos/{owner}/{repo}/contents/{filepath}",
        "contents_root": "/repos/{owner}/{repo}/contents",
        "commit": "/repos/{owner}/{repo}/git/commits/{sha}",
        "commit_diff": "/repos/{owner}/{repo}/git/commits/{sha}.{diffType}",
        "issues_search": "/repos/issues/search",
        "pull_diff": "/repos/{owner}/{repo}/pulls/{index}.{diffType}",
        "user": "/user",
    }
    for name, template in required.items():
        assert ENDPOINTS[name] == template
    assert {
        "branches",
        "tags",
        "commits",
        "issues",
        "issue",
        "issue_comments",
        "pulls",
        "pull",
        "pull_files",
        "releases",
        "version",
    } <= set(ENDPOINTS)
    assert set(SHAPES) == set(ENDPOINTS)


def test_text_shapes_are_exactly_the_text_plain_operations():
    text = {
        n for n, t in ENDPOINTS.items() if "text/plain" in spec.operation(t).get("produces", [])
    }
    # compare answers JSON unless output=diff (compare_diff); the job log is plain text although
    # the spec says the operation produces JSON (its 200 is "output blob content", no schema).
    text = (text - {"compare"}) | {"action_job_logs"}
    assert text == {n for n, s in SHAPES.items() if s == "text"}


def test_segments_are_percent_encoded():
    assert build_path("repo", owner="a b", repo="c/d") == "/repos/a%20b/c%2Fd"
    assert (
        build_path("tree", owner="o", repo="r", sha="feature/x")
        == "/repos/o/r/git/trees/feature%2Fx"
    )
    assert build_path("repo", owner="o", repo="r?x=1#y") == "/repos/o/r%3Fx%3D1%23y"
    assert build_path("repo", owner="ü", repo="%2e%2e") == "/repos/%C3%BC/%252e%252e"


def test_filepath_keeps_slashes_but_encodes_the_rest():
    path = build_path("contents", owner="o", repo="r", filepath="docs/a b/c?.md")
    assert path == "/repos/o/r/contents/docs/a%20b/c%3F.md"


@pytest.mark.parametrize(
    "filepath", ["", "/etc/passwd", "a//b", "a/../b", "../x", "./x", "x/", "x/."]
)
def test_filepath_rejects_escaping_or_empty_segments(filepath):
    with pytest.raises(ValueError):
        build_path("contents", owner="o", repo="r", filepath=filepath)


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_segment_rejects_dot_and_empty(value):
    with pytest.raises(ValueError):
        build_path("repo", owner=value, repo="r")


def test_index_and_diff_type_are_validated():
    assert build_path("issue", owner="o", repo="r", index="7") == "/repos/o/r/issues/7"
    assert (
        build_path("pull_diff", owner="o", repo="r", index=3, diffType="patch")
        == "/repos/o/r/pulls/3.patch"
    )
    for bad in (0, -1, "1a", True, 1.5):
        with pytest.raises(ValueError):
            build_path("issue", owner="o", repo="r", index=bad)
    with pytest.raises(ValueError):
        build_path("commit_diff", owner="o", repo="r", sha="abc", diffType="html")


def test_unknown_endpoint_and_wrong_parameters():
    with pytest.raises(ValueError, match="unknown"):
        build_path("admin_users")
    with pytest.raises(ValueError, match="missing"):
        build_path("repo", owner="o")
    with pytest.raises(ValueError, match="unexpected"):
        build_path("version", owner="o")


def test_built_paths_match_their_own_template():
    samples = {
        "owner": "o w",
        "repo": "r",
        "sha": "abc",
        "filepath": "a/b c.py",
        "index": 5,
        "diffType": "diff",
        "run": 7,
        "job_id": 9,
        "ref": "feature/x",
        "basehead": "main...feature/x",
        "pageName": "On-call-Runbook",
    }
    for name, template in ENDPOINTS.items():
        path = build_path(name, **{p: samples[p] for p in template_params(name)})
        assert spec.match_template(path) == template
        assert not re.search(r"[{} ]", path)
