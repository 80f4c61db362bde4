"""The real Gitea tools, fuzzed through the real server with the Gitea double behind it.

- **Arguments**: every tool's arguments, generated from its own input schema and mixed with
  names, paths, refs and ids that exist or nearly exist (case variants, the renamed
  ``northwind/beacon``, encoded and double-encoded traversal, NUL, backslashes, huge values),
  on both transports. Every call ends in a CallToolResult, never an internal error; a call
  refused for its arguments or by the policy sends **no request at all** to Gitea; no request
  ever names a denied repository; no result carries a sensitive file's content or the Gitea
  token.
- **Answers**: Gitea's real answers with their fields replaced by values of other types
  (``mangle``), and any JSON at all in place of an answer. Every call still ends in a result
  (``isError`` or not), never an internal error.

Budget: ``AEGIS_FUZZ_EXAMPLES`` (see ``conftest.py``).
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aegis_tornado.tools.gate import DECOY_OWNER, DECOY_REPO
from aegis_tornado.tools.policy import RepoPolicy

from .checks import assert_no_leak, assert_tool_result
from .conftest import FUZZ
from .gitea_live import GITEA_TOKEN, GiteaLive
from .strategies import any_gitea_tool_call, json_values

#: lighthouse is where the content is (sensitive files, diffs); deny its neighbours and the
#: repository it is renamed from is allowed, so the redirect is exercised both ways below.
DENY = ("northwind/deploy-config", "alice/*", "northwind/hr-payroll")
POLICY = RepoPolicy(deny=DENY)

#: Text that only the sensitive files of the double contain.
SENSITIVE_CONTENT = (
    "correct-horse-battery-staple",
    "demo-only-smtp-password",
    "demo-only-password",
    base64.b64encode(b"FAKE OPENSSH PRIVATE KEY FOR THE AEGIS DEMO - deploy key")[:40].decode(),
    base64.b64encode(b"FAKE PRIVATE KEY FOR THE AEGIS DEMO - server key")[:40].decode(),
)
#: Why a call may end without asking Gitea anything, and must.
REFUSED_BEFORE_GITEA = {"invalid_arguments", "sensitive_path"}
#: What Gitea is asked instead of a denied repository: a name that cannot exist, so a denied
#: repository costs (and answers) what a missing one does.
DECOY = (DECOY_OWNER.lower(), DECOY_REPO.lower())

#: One call per tool that succeeds against a well-behaved double.
GOOD_CALLS = {
    "search": {"query": "dns"},
    "fetch": {"id": "pull:northwind/lighthouse#12"},
    "list_repositories": {"limit": 5},
    "get_repository": {"owner": "northwind", "repo": "lighthouse"},
    "list_branches": {"owner": "northwind", "repo": "lighthouse"},
    "list_tags": {"owner": "northwind", "repo": "lighthouse"},
    "get_file_tree": {"owner": "northwind", "repo": "lighthouse", "path": "src", "recursive": True},
    "get_file_contents": {"owner": "northwind", "repo": "lighthouse", "path": "README.md"},
    "list_commits": {"owner": "northwind", "repo": "lighthouse", "limit": 3},
    "get_commit": {"owner": "northwind", "repo": "lighthouse", "sha": "6253de10"},
    "list_issues": {"owner": "northwind", "repo": "lighthouse", "state": "all"},
    "get_issue": {"owner": "northwind", "repo": "lighthouse", "number": 3},
    "list_pull_requests": {"owner": "northwind", "repo": "lighthouse", "state": "all"},
    "get_pull_request": {"owner": "northwind", "repo": "lighthouse", "number": 12},
    "list_releases": {"owner": "northwind", "repo": "lighthouse"},
    "list_workflow_runs": {"owner": "northwind", "repo": "lighthouse", "status": "failure"},
    "get_workflow_run": {"owner": "northwind", "repo": "lighthouse", "run_id": 102},
    "get_job_log": {"owner": "northwind", "repo": "lighthouse", "job_id": 501},
    "list_wiki_pages": {"owner": "northwind", "repo": "lighthouse"},
    "get_wiki_page": {"owner": "northwind", "repo": "lighthouse", "page_name": "Home"},
    "compare_refs": {"owner": "northwind", "repo": "lighthouse", "base": "v1.0.0", "head": "main"},
    "get_commit_status": {"owner": "northwind", "repo": "lighthouse", "ref": "main"},
    "list_labels": {"owner": "northwind", "repo": "lighthouse"},
    "list_milestones": {"owner": "northwind", "repo": "lighthouse", "state": "all"},
}
EXTRA_GOOD_CALLS = [
    ("fetch", {"id": "repo:northwind/lighthouse"}),
    ("fetch", {"id": "issue:northwind/lighthouse#3"}),
    ("fetch", {"id": "file:northwind/lighthouse@main:README.md"}),
    ("fetch", {"id": "commit:northwind/lighthouse@6253de10"}),
    ("get_file_tree", {"owner": "northwind", "repo": "lighthouse"}),
    ("list_repositories", {"query": "lighthouse"}),
    ("fetch", {"id": "wiki:northwind/lighthouse:On-call-Runbook"}),
    ("fetch", {"id": "run:northwind/lighthouse#102"}),
]


@pytest.fixture(scope="module")
def gitea_live(tmp_path_factory):
    server = GiteaLive(tmp_path_factory.mktemp("gitea-live"), repo_denylist=DENY)
    yield server
    server.check_and_stop()


def _registry():
    from aegis_tornado.assembly import gitea_tools
    from aegis_tornado.settings import Settings

    client, registry = gitea_tools(Settings(), "http://127.0.0.1:9", None)
    client.close()
    return registry


REGISTRY = _registry()


def test_every_tool_is_fuzzed():
    assert {tool.name for tool in REGISTRY} == set(GOOD_CALLS)


def check_call(gitea_live: GiteaLive, name: str, arguments, result: dict, mark: int) -> dict:
    """The invariants of any call of a Gitea tool; returns its audit line."""
    assert_tool_result(result)
    text = result["content"][0]["text"]
    assert "internal error" not in text, (name, arguments, text)
    audit = gitea_live.last_tool_audit()
    assert audit["tool"] == name, audit
    assert audit.get("reason") != "internal_error", (name, arguments, audit)
    asked = gitea_live.requests_since(mark)
    if audit.get("reason") in REFUSED_BEFORE_GITEA:
        assert asked == [], (name, arguments, audit, [r.path for r in asked])
    named = gitea_live.repositories_named(asked)
    if audit.get("reason") == "repo_policy":
        assert named <= {DECOY}, (name, arguments, audit, named)
    denied = {pair for pair in named - {DECOY} if not POLICY.allows(*pair)}
    assert not denied, (name, arguments, denied)
    dumped = json.dumps(result, ensure_ascii=False)
    assert GITEA_TOKEN not in dumped
    for marker in SENSITIVE_CONTENT:
        assert marker not in dumped, (name, arguments, marker)
    return audit


@pytest.mark.parametrize("transport", ["mcp", "rest"])
@FUZZ
@given(call=any_gitea_tool_call(REGISTRY))
def test_any_arguments_to_any_gitea_tool(gitea_live, transport, call):
    name, arguments = call
    mark = len(gitea_live.double.requests)
    result = gitea_live.call(name, arguments, transport)
    if result:
        check_call(gitea_live, name, arguments, result, mark)


@FUZZ
@given(
    call=st.sampled_from(sorted(GOOD_CALLS.items()) + EXTRA_GOOD_CALLS), seed=st.integers(0, 2**32)
)
def test_gitea_answers_with_fields_of_any_type(gitea_live, call, seed):
    name, arguments = call
    gitea_live.clear_faults()
    gitea_live.add_fault("mangle", seed=seed)
    try:
        mark = len(gitea_live.double.requests)
        result = gitea_live.call(name, arguments)
        assert_no_leak(json.dumps(result).encode())
        check_call(gitea_live, name, arguments, result, mark)
    finally:
        gitea_live.clear_faults()


@FUZZ
@given(call=st.sampled_from(sorted(GOOD_CALLS.items())), body=json_values(10))
def test_gitea_answers_with_any_json(gitea_live, call, body):
    name, arguments = call
    encoded = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    gitea_live.clear_faults()
    gitea_live.add_fault("status", status=200, body=encoded.decode("utf-8", "replace"))
    try:
        mark = len(gitea_live.double.requests)
        result = gitea_live.call(name, arguments)
        check_call(gitea_live, name, arguments, result, mark)
    finally:
        gitea_live.clear_faults()


@pytest.mark.parametrize(
    "tool, arguments, seed",
    [
        # Found by the fuzzer: a tree entry's type that is an object (unhashable) and a
        # directory's tree SHA that is empty went into a dict lookup and an API path.
        ("get_file_tree", GOOD_CALLS["get_file_tree"], 512),
        ("get_file_tree", GOOD_CALLS["get_file_tree"], 15),
    ],
)
def test_mangled_answers_found_by_the_fuzzer(gitea_live, tool, arguments, seed):
    gitea_live.clear_faults()
    gitea_live.add_fault("mangle", seed=seed)
    try:
        mark = len(gitea_live.double.requests)
        check_call(gitea_live, tool, arguments, gitea_live.call(tool, arguments), mark)
    finally:
        gitea_live.clear_faults()


def test_the_good_calls_are_good(gitea_live):
    """The calls the answer fuzzers start from succeed when Gitea behaves (else they test
    nothing)."""
    for name, arguments in sorted(GOOD_CALLS.items()) + EXTRA_GOOD_CALLS:
        mark = len(gitea_live.double.requests)
        result = gitea_live.call(name, arguments)
        assert not result.get("isError"), (name, result["content"][0]["text"][:300])
        check_call(gitea_live, name, arguments, result, mark)
