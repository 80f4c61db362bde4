"""Repository allow/deny policy and sensitive-path policy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from aegis_tornado.tools.policy import (
    DEFAULT_SENSITIVE_PATHS,
    PathPolicy,
    RepoPolicy,
    displayed_name,
)

ROOT = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------------------------
# RepoPolicy: construction
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        "octo",  # no slash
        "octo/",
        "/repo",
        "octo/repo/extra",
        "*/repo",
        "*/*",
        "oc*/repo",
        "octo/app-*",
        "octo/*repo",
        "-octo/repo",  # owner breaks Gitea's rules
        "octo/repo.git",  # repo breaks Gitea's rules
        "octo/..",
        "octo/re po",
        "",
        "   ",
        42,
        None,
    ],
)
def test_bad_patterns_raise_value_error_naming_the_pattern(pattern):
    with pytest.raises(ValueError) as info:
        RepoPolicy(allow=[pattern])
    assert repr(pattern) in str(info.value)
    with pytest.raises(ValueError) as info:
        RepoPolicy(deny=[pattern])
    assert "deny" in str(info.value)


def test_a_single_string_instead_of_a_list_is_refused():
    with pytest.raises(ValueError, match="list of patterns"):
        RepoPolicy(allow="octo/*")
    with pytest.raises(ValueError, match="list of patterns"):
        RepoPolicy(deny="octo/repo")


def test_patterns_are_trimmed_and_kept_as_configured():
    policy = RepoPolicy(allow=[" Octo/* ", "alice/Proj"], deny=["octo/Secret\n"])
    assert policy.allow == ("Octo/*", "alice/Proj")
    assert policy.deny == ("octo/Secret",)
    assert "Octo/*" in repr(policy)


def test_none_lists_mean_empty():
    policy = RepoPolicy(allow=None, deny=None)
    assert policy.unrestricted
    assert policy.allows("anyone", "anything")


# --------------------------------------------------------------------------------------------
# RepoPolicy: matching
# --------------------------------------------------------------------------------------------


def test_empty_allow_list_allows_everything_that_is_not_denied():
    policy = RepoPolicy(deny=["octo/secret"])
    assert not policy.unrestricted
    assert policy.allows("octo", "public")
    assert policy.allows("someone", "else")
    assert not policy.allows("octo", "secret")


def test_owner_wildcard_allows_every_repo_of_that_owner_only():
    policy = RepoPolicy(allow=["octo/*"])
    assert policy.allows("octo", "a")
    assert policy.allows("octo", "b")
    assert not policy.allows("octopus", "a")  # no prefix matching
    assert not policy.allows("other", "a")


def test_exact_pattern_allows_only_that_repo():
    policy = RepoPolicy(allow=["alice/proj"])
    assert policy.allows("alice", "proj")
    assert not policy.allows("alice", "proj2")
    assert not policy.allows("alice", "pro")
    assert not policy.allows("bob", "proj")


@pytest.mark.parametrize(
    ("allow", "deny"),
    [
        (["octo/*"], ["octo/secret"]),
        (["octo/secret"], ["octo/secret"]),
        (["octo/secret"], ["octo/*"]),
        (["octo/*"], ["octo/*"]),
        ([], ["octo/*"]),
    ],
)
def test_deny_always_wins(allow, deny):
    policy = RepoPolicy(allow=allow, deny=deny)
    assert not policy.allows("octo", "secret")
    assert policy.denial_reason("octo", "secret").startswith("denied by pattern")


@pytest.mark.parametrize(
    ("owner", "repo"),
    [("octo", "repo"), ("OCTO", "REPO"), ("Octo", "Repo"), ("oCtO", "rEpO")],
)
def test_matching_ignores_case(owner, repo):
    assert RepoPolicy(allow=["Octo/Repo"]).allows(owner, repo)
    assert RepoPolicy(allow=["OCTO/*"]).allows(owner, repo)
    assert not RepoPolicy(deny=["octo/repo"]).allows(owner, repo)
    assert not RepoPolicy(deny=["octo/*"]).allows(owner, repo)


@pytest.mark.parametrize(
    ("owner", "repo"),
    [
        ("octo/x", "repo"),
        ("octo", "repo/../secret"),
        ("octo", ""),
        ("", "repo"),
        (None, "repo"),
        ("octo", None),
        (1, 2),
        ("octo", "repo\x00"),
        ("ｏｃｔｏ", "repo"),  # fullwidth letters are not Gitea names
    ],
)
def test_invalid_names_are_never_allowed_even_when_unrestricted(owner, repo):
    for policy in (RepoPolicy(), RepoPolicy(allow=["octo/*"])):
        assert not policy.allows(owner, repo)
        assert policy.denial_reason(owner, repo) == "not a valid owner/repository name"


def test_legacy_names_that_break_todays_creation_rules_still_match():
    # An account created before Gitea tightened its naming rules keeps its name: allows()
    # takes such a name (it does not re-run validate_owner) and applies the lists to it.
    assert RepoPolicy().allows("old_user_", "repo")
    assert not RepoPolicy(allow=["octo/*"]).allows("old_user_", "repo")


def test_denial_reasons():
    policy = RepoPolicy(allow=["octo/*", "alice/proj"], deny=["Octo/Secret", "evil/*"])
    assert policy.denial_reason("octo", "x") is None
    assert policy.denial_reason("octo", "secret") == "denied by pattern 'Octo/Secret'"
    assert policy.denial_reason("EVIL", "x") == "denied by pattern 'evil/*'"
    assert policy.denial_reason("bob", "x") == "not in the allow list"


def test_allows_full_name():
    policy = RepoPolicy(allow=["octo/*"])
    assert policy.allows_full_name("octo/repo")
    assert policy.allows_full_name("Octo/Repo")
    assert not policy.allows_full_name("octo")
    assert not policy.allows_full_name("octo/repo/x")
    assert not policy.allows_full_name(("octo", "repo"))
    assert not policy.allows_full_name(None)


def test_allows_owner_fully():
    assert RepoPolicy().allows_owner_fully("anyone")
    policy = RepoPolicy(allow=["octo/*", "alice/proj", "carol/*"], deny=["carol/secret"])
    assert policy.allows_owner_fully("octo")
    assert policy.allows_owner_fully("OCTO")
    assert not policy.allows_owner_fully("alice")  # only one repo of alice
    assert not policy.allows_owner_fully("carol")  # one of carol's repos is denied
    assert not policy.allows_owner_fully("bob")
    assert not RepoPolicy(deny=["x/*"]).allows_owner_fully("x")
    assert not policy.allows_owner_fully("bad/name")


def test_may_allow_owner():
    assert RepoPolicy().may_allow_owner("anyone")
    policy = RepoPolicy(allow=["octo/*", "alice/proj"], deny=["evil/*", "octo/secret"])
    assert policy.may_allow_owner("octo")
    assert policy.may_allow_owner("Alice")
    assert not policy.may_allow_owner("bob")
    assert not policy.may_allow_owner("evil")
    assert not RepoPolicy(deny=["evil/*"]).may_allow_owner("evil")
    assert RepoPolicy(deny=["evil/one"]).may_allow_owner("evil")
    assert not policy.may_allow_owner(None)


def test_filter_keeps_order_and_drops_unparseable_keys():
    policy = RepoPolicy(allow=["octo/*"], deny=["octo/secret"])
    repos = [
        {"full_name": "octo/b"},
        {"full_name": "octo/secret"},
        {"full_name": "other/a"},
        {"full_name": "Octo/A"},
        {"full_name": None},
        {"full_name": "octo"},
    ]
    kept = policy.filter(repos, key=lambda r: r["full_name"])
    assert kept == [{"full_name": "octo/b"}, {"full_name": "Octo/A"}]


def test_filter_accepts_pairs_and_strings_without_a_key():
    policy = RepoPolicy(allow=["octo/*"])
    assert policy.filter(["octo/a", "bob/b", ("octo", "c"), ["octo", "d"], ("octo",), 7]) == [
        "octo/a",
        ("octo", "c"),
        ["octo", "d"],
    ]
    assert policy.filter(iter(["octo/x"])) == ["octo/x"]


_patterns = st.lists(st.sampled_from(["a/*", "a/b", "B/c", "c/*", "a/c", "A/B"]), max_size=4)
_names = st.text(alphabet="abcAB-._/0", min_size=1, max_size=6)


@given(_patterns, _patterns, _names, _names)
def test_deny_wins_and_case_never_matters(allow, deny, owner, repo):
    policy = RepoPolicy(allow=allow, deny=deny)
    result = policy.allows(owner, repo)
    assert result == policy.allows(owner.upper(), repo.upper())
    assert result == policy.allows(owner.lower(), repo.lower())
    denied = {p.lower() for p in deny}
    if f"{owner.lower()}/{repo.lower()}" in denied or f"{owner.lower()}/*" in denied:
        assert not result
    if result:
        try:
            stricter = RepoPolicy(allow=allow, deny=[*deny, f"{owner}/{repo}"])
        except ValueError:
            return  # not expressible as a pattern (e.g. a legacy-style name)
        assert not stricter.allows(owner, repo)


# --------------------------------------------------------------------------------------------
# PathPolicy
# --------------------------------------------------------------------------------------------


def test_default_globs_are_the_documented_ones():
    """One table in docs/SECURITY.md, the .env.example comment and the example YAML all name
    exactly the defaults, in order."""
    assert PathPolicy().globs == DEFAULT_SENSITIVE_PATHS
    security = (ROOT / "docs" / "SECURITY.md").read_text(encoding="utf-8")
    table = re.findall(r"^\s*\| `([^`]+)` \| [^|]+ \|$", security, flags=re.M)
    assert tuple(table) == DEFAULT_SENSITIVE_PATHS
    env_example = (ROOT / ".env.example").read_text(encoding="utf-8")
    [line] = re.findall(r"^#SENSITIVE_PATHS=(.*)$", env_example, flags=re.M)
    assert tuple(line.split(",")) == DEFAULT_SENSITIVE_PATHS
    example = yaml.safe_load((ROOT / "conf" / "aegis.example.yaml").read_text(encoding="utf-8"))
    assert tuple(example["sensitive_paths"]) == DEFAULT_SENSITIVE_PATHS


@pytest.mark.parametrize("prefix", ["", "app/", "deploy/prod/", "a/b/c/d/e/"])
@pytest.mark.parametrize(
    ("name", "glob"),
    [
        (".env", ".env*"),
        (".env.local", ".env*"),
        (".env.production", ".env*"),
        (".envrc", ".env*"),
        ("server.pem", "*.pem"),
        ("tls.key", "*.key"),
        ("id_rsa", "id_rsa*"),
        ("id_rsa.pub", "id_rsa*"),
        ("id_ed25519", "id_ed25519*"),
        ("cert.p12", "*.p12"),
        ("cert.pfx", "*.pfx"),
        (".git-credentials", ".git-credentials"),
        (".npmrc", ".npmrc"),
        (".pypirc", ".pypirc"),
        ("secrets.yaml", "secrets.*"),
        ("secrets.json", "secrets.*"),
        ("release.jks", "*.jks"),
        ("app.keystore", "*.keystore"),
        ("server.ppk", "*.ppk"),
        ("id_dsa", "id_dsa*"),
        ("id_ecdsa", "id_ecdsa*"),
        ("id_ecdsa_sk.pub", "id_ecdsa*"),
        ("id_ed25519_sk", "id_ed25519*"),
        ("passwords.kdbx", "*.kdbx"),
        (".netrc", ".netrc"),
        ("_netrc", "_netrc"),
        (".pgpass", ".pgpass"),
        (".htpasswd", ".htpasswd"),
        (".vault-token", ".vault-token"),
        (".dockercfg", ".dockercfg"),
        (".docker/config.json", "**/.docker/config.json"),
        (".aws/credentials", "**/.aws/credentials"),
        (".kube/config", "**/.kube/config"),
        ("terraform.tfstate", "*.tfstate"),
        ("terraform.tfstate.backup", "*.tfstate.backup"),
    ],
)
def test_default_sensitive_files_at_any_depth(prefix, name, glob):
    policy = PathPolicy()
    assert policy.is_sensitive(prefix + name)
    assert policy.blocked_reason(prefix + name) == glob


@pytest.mark.parametrize(
    ("path", "glob"),
    [
        (".env/config", ".env*"),  # a directory named like a sensitive file
        ("app/.env.d/prod.conf", ".env*"),
        ("secrets.d/db.txt", "secrets.*"),
        ("keys/backup.key/README", "*.key"),
    ],
)
def test_files_inside_sensitive_directories_are_blocked(path, glob):
    assert PathPolicy().blocked_reason(path) == glob


@pytest.mark.parametrize(
    "path",
    [
        ".ENV",
        "Config/.Env.Local",
        "ID_RSA",
        "keys/Id_Ed25519.PUB",
        "CERT.PEM",
        "SECRETS.YML",
        ".NPMRC",
        ".Git-Credentials",
    ],
)
def test_matching_ignores_case(path):
    assert PathPolicy().is_sensitive(path)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "README.md",
        "src/env.py",
        "environment.yml",
        "docs/dotenv.md",
        "example.env",  # ".env*" is a prefix glob, not a suffix glob
        "keyboard.py",
        "src/keys.py",
        "pem/README.md",
        "my_id_rsa_notes.txt",
        "secrets",  # no extension: "secrets.*" needs the dot
        "docs/secrets-management.md",
        "npmrc.md",
        "src/identity.py",
        "id_generator.py",
        "docker/config.json",  # not in a .docker directory
        "aws/credentials.md",
        "docs/.aws/credentials.md",
        "kube/config",
        "main.tf",
        "tfstate.md",
        "netrc.py",
    ],
)
def test_ordinary_files_are_not_sensitive(path):
    assert not PathPolicy().is_sensitive(path)
    assert PathPolicy().blocked_reason(path) is None


@pytest.mark.parametrize(
    "path",
    [
        "./.env",
        "app//.env",
        "app/.env/",
        "%2eenv",
        "app/%2Eenv",
        "%252eenv",
        "app\\.env",
        "id%5frsa",
    ],
)
def test_unnormalised_and_encoded_forms_are_still_caught(path):
    assert PathPolicy().is_sensitive(path)


def test_custom_globs_replace_the_defaults():
    policy = PathPolicy(["*.sqlite"])
    assert policy.is_sensitive("data/app.sqlite")
    assert not policy.is_sensitive(".env")
    extended = PathPolicy([*DEFAULT_SENSITIVE_PATHS, "*.sqlite"])
    assert extended.is_sensitive(".env") and extended.is_sensitive("db.SQLITE")


def test_empty_glob_list_blocks_nothing():
    assert not PathPolicy([]).is_sensitive(".env")


@pytest.mark.parametrize(
    ("glob", "blocked", "allowed"),
    [
        (
            "config/*.yml",
            ["config/app.yml", "CONFIG/App.YML"],
            ["config/sub/app.yml", "x/config/app.yml", "config.yml", "config/app.yaml"],
        ),
        ("/top.txt", ["top.txt"], ["a/top.txt"]),
        (
            "**/private/*.json",
            ["private/a.json", "x/y/private/a.json"],
            ["private/a.txt", "private/sub/a.json", "privateX/a.json"],
        ),
        ("deploy/**", ["deploy/a", "deploy/a/b/c"], ["deploy", "x/deploy/a"]),
        (
            "infra/secrets",
            ["infra/secrets", "infra/secrets/db.txt", "infra/Secrets/x/y"],
            ["secrets", "x/infra/secrets", "infra/secretsX"],
        ),
        (
            "terraform/*.tfstate*",
            ["terraform/a.tfstate", "terraform/a.tfstate.backup"],
            ["a.tfstate"],
        ),
    ],
)
def test_globs_with_a_slash_match_the_whole_path_and_its_parents(glob, blocked, allowed):
    policy = PathPolicy([glob])
    for path in blocked:
        assert policy.blocked_reason(path) == glob, path
    for path in allowed:
        assert not policy.is_sensitive(path), path


@pytest.mark.parametrize(
    ("glob", "blocked", "allowed"),
    [
        ("?.key", ["a.key", "x/b.key"], ["ab.key", ".key/"]),
        ("cred[0-9].txt", ["cred1.txt", "x/cred9.txt"], ["credA.txt", "cred10.txt"]),
        ("cred[!0-9].txt", ["credA.txt"], ["cred1.txt"]),
        ("a[.txt", ["a[.txt"], ["a.txt"]),  # unclosed bracket is literal
        ("plus+dot.txt", ["plus+dot.txt"], ["plusdot.txt", "plussdot.txt"]),  # regex chars escaped
        ("secrets/", ["secrets", "a/secrets/b"], ["secretsX"]),
        ("*", ["anything", "a/b"], [""]),
    ],
)
def test_glob_syntax(glob, blocked, allowed):
    policy = PathPolicy([glob])
    for path in blocked:
        assert policy.is_sensitive(path), path
    for path in allowed:
        assert not policy.is_sensitive(path), path


@pytest.mark.parametrize("glob", ["", "  ", "/", "a\\b", 5, None])
def test_bad_globs_raise_value_error(glob):
    with pytest.raises(ValueError) as info:
        PathPolicy([glob])
    assert repr(glob) in str(info.value)


def test_single_string_glob_list_is_refused():
    with pytest.raises(ValueError, match="list of patterns"):
        PathPolicy(".env*")


def test_non_string_path_is_a_programming_error():
    with pytest.raises(TypeError):
        PathPolicy().is_sensitive(None)


def test_path_filter_drops_sensitive_and_non_string_entries():
    entries = [
        {"path": "README.md"},
        {"path": "config/.env"},
        {"path": "src/app.py"},
        {"path": "id_rsa"},
        {"path": None},
    ]
    kept = PathPolicy().filter(entries, key=lambda e: e["path"])
    assert kept == [{"path": "README.md"}, {"path": "src/app.py"}]
    assert PathPolicy().filter(["a.py", ".env"]) == ["a.py"]


@given(
    st.lists(st.sampled_from(["src", "app", "a b", "文档", ".github", "x.y"]), max_size=5),
    st.sampled_from([".env", ".ENV.local", "id_rsa", "secrets.toml", "TLS.KEY", "x.pfx"]),
)
def test_a_sensitive_name_is_caught_at_any_depth_and_as_any_directory(dirs, name):
    policy = PathPolicy()
    assert policy.is_sensitive("/".join([*dirs, name]))
    assert policy.is_sensitive("/".join([*dirs, name, "child.txt"]))


# --- names as displayed --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "glob"),
    [
        ("deploy/key.pem\u200b", "*.pem"),  # ZERO WIDTH SPACE: shown as deploy/key.pem
        ("deploy/key.pem\u2060", "*.pem"),  # WORD JOINER
        ("deploy/key.pem\ufeff", "*.pem"),  # BOM
        ("key.pem\ufe0f", "*.pem"),  # a variation selector
        ("key.pem\U000e0041", "*.pem"),  # a tag character
        ("key.pem\u2028", "*.pem"),  # LINE SEPARATOR
        ("key.pem\u2800", "*.pem"),  # BRAILLE PATTERN BLANK
        ("key.pem\ue000", "*.pem"),  # private use
        ("key.pem\u00ad", "*.pem"),  # SOFT HYPHEN
        ("key.pem\u00a0", "*.pem"),  # NO-BREAK SPACE at the end of a name
        (".e\u200dnv", ".env*"),
        ("\u2060.env", ".env*"),
        ("deploy/id_\u200crsa", "id_rsa*"),
        ("secrets\u00ad.yml", "secrets.*"),
        ("\uff0e\uff45\uff4e\uff56", ".env*"),  # full-width: shown as .env
        ("ID_RSA\u200b", "id_rsa*"),
    ],
)
def test_a_name_is_judged_as_it_is_displayed(path, glob):
    assert PathPolicy().blocked_reason(path) == glob


def test_names_are_compared_in_nfc_and_case_folded():
    policy = PathPolicy(["café.txt", "strasse.txt"])
    assert policy.is_sensitive("cafe\u0301.txt")  # NFD on disk, NFC in the glob
    assert policy.is_sensitive("CAFE\u0301.TXT")
    assert policy.is_sensitive("STRAßE.txt")  # case-folded: ß is ss


def test_the_raw_name_is_refused_too():
    # A glob written with the invisible character still matches the raw name.
    assert PathPolicy(["a\u200bb.txt"]).is_sensitive("a\u200bb.txt")
    assert PathPolicy(["*.pem"]).is_sensitive("key.pem")


@pytest.mark.parametrize("path", ["README.md", "src/app\u200b.py", "docs/caf\u00e9.md", "a\u2800b"])
def test_invisible_characters_do_not_make_ordinary_names_sensitive(path):
    assert not PathPolicy().is_sensitive(path)


def test_displayed_name():
    assert displayed_name("Deploy/Key.PEM\u200b") == "deploy/key.pem"
    assert displayed_name(" a / b ") == "a/b"
    assert displayed_name("cafe\u0301") == "caf\u00e9"
