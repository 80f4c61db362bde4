"""Tool-argument validation: Gitea name rules, path traversal, git refs, numbers, messages."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aegis_tornado.tools.validation import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_NUMBER,
    PATH_MAX_BYTES,
    ValidationError,
    escape_for_message,
    normalize_path,
    validate_limit,
    validate_number,
    validate_owner,
    validate_page,
    validate_ref,
    validate_repo,
    validate_sha,
)


def _error(func, *args, **kwargs) -> str:
    with pytest.raises(ValidationError) as info:
        func(*args, **kwargs)
    return str(info.value)


def test_validation_error_is_a_value_error_and_names_its_field():
    with pytest.raises(ValueError) as info:
        validate_owner("")
    assert isinstance(info.value, ValidationError)
    assert info.value.field == "owner"
    assert info.value.message == str(info.value)


# --------------------------------------------------------------------------------------------
# Owner names (Gitea IsValidUsername + IsUsableUsername + MaxSize(40))
# --------------------------------------------------------------------------------------------

VALID_OWNERS = [
    "a",
    "abc",
    "0.b-c",  # Gitea's own test table
    "a.b-c_d",
    "Octo-Org",
    "user2",
    "9lives",
    "x" * 40,
]

INVALID_OWNERS = [
    ("", "must be the name"),
    ("   ", "must be the name"),
    (".abc", "start with a letter or digit"),
    ("_abc", "start with a letter or digit"),
    ("-im-here", "start with a letter or digit"),
    ("--diff", "start with a letter or digit"),
    ("-", "start with a letter or digit"),
    ("abc.", "must not end with"),
    ("abc-", "must not end with"),
    ("abc_", "must not end with"),
    ("a..bc", "in a row"),
    ("a...bc", "in a row"),
    ("a.-bc", "in a row"),
    ("a._bc", "in a row"),
    ("a_-bc", "in a row"),
    ("a--b", "in a row"),
    ("a/bc", "ASCII letters"),
    ("a space", "ASCII letters"),
    ("☁️", "ASCII letters"),
    ("café", "ASCII letters"),
    ("user\x00", "ASCII letters"),
    ("x" * 41, "at most 40"),
    ("api", "reserves"),
    ("API", "reserves"),
    ("explore", "reserves"),
    ("ghost", "reserves"),
    ("gitea-actions", "reserves"),
    ("favicon.ico", "reserves"),
    ("bob.keys", "'.keys'"),
    ("bob.GPG", "'.gpg'"),
    ("bob.rss", "'.rss'"),
    ("bob.atom", "'.atom'"),
    ("bob.png", "'.png'"),
]


@pytest.mark.parametrize("name", VALID_OWNERS)
def test_valid_owner_names_are_returned_unchanged(name):
    assert validate_owner(name) == name


def test_owner_surrounding_whitespace_is_dropped_and_case_kept():
    assert validate_owner("  Octo-Org\n") == "Octo-Org"


@pytest.mark.parametrize(("name", "expected"), INVALID_OWNERS)
def test_invalid_owner_names_are_refused_with_a_reason(name, expected):
    message = _error(validate_owner, name)
    assert message.startswith("owner ")
    assert expected in message


@pytest.mark.parametrize("value", [None, 42, b"octo", ["octo"], True])
def test_owner_must_be_a_string(value):
    assert "must be a string" in _error(validate_owner, value)


def test_owner_message_quotes_the_value_with_control_characters_escaped():
    message = _error(validate_owner, "evil\x1b[31mname")
    assert "\x1b" not in message
    assert "'evil\\x1b[31mname'" in message


def test_owner_with_slash_explains_how_to_split_owner_and_repo():
    message = _error(validate_owner, "octo/repo")
    assert "'/'" in message


# --------------------------------------------------------------------------------------------
# Repository names (Gitea IsUsableRepoName + AlphaDashDot + MaxSize(100))
# --------------------------------------------------------------------------------------------

VALID_REPOS = [
    "repo",
    "my-repo",
    "my_repo",
    "my.repo",
    ".profile",  # Gitea's profile repositories start with a dot
    ".github",
    "-leading-dash",
    "trailing-",
    "a--b__c",
    "Repo.Name-1_2",
    "gitish",  # contains "git" but does not end with ".git"
    "x" * 100,
]

INVALID_REPOS = [
    ("", "must be the name"),
    (".", "reserved"),
    ("-", "reserved"),
    ("..", "'..'"),
    ("a..b", "'..'"),
    ("repo.git", "'.git'"),
    ("repo.GIT", "'.git'"),
    ("repo.wiki", "'.wiki'"),
    ("repo.rss", "'.rss'"),
    ("repo.atom", "'.atom'"),
    ("owner/repo", "without the owner"),
    ("my repo", "ASCII letters"),
    ("répo", "ASCII letters"),
    ("repo?x=1", "ASCII letters"),
    ("repo%2f..", "ASCII letters"),
    ("x" * 101, "at most 100"),
]


@pytest.mark.parametrize("name", VALID_REPOS)
def test_valid_repo_names_are_returned_unchanged(name):
    assert validate_repo(name) == name


@pytest.mark.parametrize(("name", "expected"), INVALID_REPOS)
def test_invalid_repo_names_are_refused_with_a_reason(name, expected):
    message = _error(validate_repo, name)
    assert message.startswith("repo ")
    assert expected in message


def test_repo_dot_git_message_suggests_the_bare_name():
    assert "use 'tools'" in _error(validate_repo, "tools.git")


@given(st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=120))
def test_accepted_repo_names_are_always_url_path_safe(name):
    try:
        result = validate_repo(name)
    except ValidationError:
        return
    assert result == name
    assert len(result) <= 100
    assert ".." not in result and "/" not in result
    assert not result.lower().endswith((".git", ".wiki"))


@given(st.text(min_size=1, max_size=60))
def test_accepted_owner_names_are_plain_ascii(name):
    try:
        result = validate_owner(name)
    except ValidationError:
        return
    assert result.isascii() and result[0].isalnum() and result[-1].isalnum()
    assert len(result) <= 40


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------

NORMALISED_PATHS = [
    ("README.md", "README.md"),
    ("docs/guide.md", "docs/guide.md"),
    ("./docs/guide.md", "docs/guide.md"),
    ("docs//guide.md", "docs/guide.md"),
    ("docs///a////b", "docs/a/b"),
    ("docs/", "docs"),
    ("docs//", "docs"),
    (".//docs", "docs"),
    ("", ""),
    (".", ""),
    ("./", ""),
    ("docs/文档/説明.md", "docs/文档/説明.md"),
    ("emoji/🙂.txt", "emoji/🙂.txt"),
    (".env", ".env"),  # dot files are fine here; PathPolicy decides about sensitivity
    (".github/workflows/ci.yml", ".github/workflows/ci.yml"),
    ("...", "..."),  # three dots is a (weird) name, not a traversal
    ("a..b/c", "a..b/c"),
    ("name with spaces.txt", "name with spaces.txt"),
    ("a%20b.txt", "a%20b.txt"),  # percent signs stay literal
    ("100%.txt", "100%.txt"),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALISED_PATHS)
def test_paths_are_normalised(raw, expected):
    assert normalize_path(raw) == expected


def test_none_means_the_root():
    assert normalize_path(None) == ""


@pytest.mark.parametrize("raw", ["", ".", "./", None])
def test_root_is_refused_when_not_allowed(raw):
    message = _error(normalize_path, raw, allow_empty=False)
    assert "root" in message


TRAVERSALS = [
    "..",
    "../etc/passwd",
    "docs/../../etc/passwd",
    "docs/..",
    "./../x",
    "%2e%2e",
    "%2e%2e/etc/passwd",
    "%2E%2e/",
    "%2e%2E%2fetc",
    "..%2f",
    "..%2fetc%2fpasswd",
    "docs/%2e%2e/%2e%2e/x",
    "%252e%252e/x",  # double encoded
    "%25252e%25252e/x",  # triple encoded
    "a/.%2e/b",
    "a/%2e./b",
    "%2e%2e%5cx",  # encoded backslash as well
    "a/\uff0e\uff0e/b",  # fullwidth dots fold to '..' under NFKC
    "a/\u2025/b",  # TWO DOT LEADER folds to '..'
]


@pytest.mark.parametrize("raw", TRAVERSALS)
def test_traversals_are_refused_in_every_encoding(raw):
    message = _error(normalize_path, raw)
    assert "must not contain '..'" in message or "backslash" in message


def test_traversal_message_matches_the_documented_wording():
    assert _error(normalize_path, "../etc/passwd") == (
        "path must be relative to the repository root and must not contain '..'; "
        "got '../etc/passwd'"
    )


def test_decoded_traversal_message_shows_the_decoded_form():
    message = _error(normalize_path, "%2e%2e/x")
    assert "'%2e%2e/x'" in message and "percent-decoded: '../x'" in message


@pytest.mark.parametrize("raw", ["/etc/passwd", "/", "//x", "%2fetc/passwd", "%252fetc"])
def test_absolute_paths_are_refused(raw):
    assert "without a leading '/'" in _error(normalize_path, raw)


def test_absolute_root_message_points_to_the_empty_path():
    assert "Use '' (empty)" in _error(normalize_path, "/")


@pytest.mark.parametrize(
    "raw", ["a\\b", "..\\..\\windows", "\\x", "docs%5cguide.md", "docs%255cguide.md"]
)
def test_backslashes_are_refused(raw):
    assert "not backslashes" in _error(normalize_path, raw)


@pytest.mark.parametrize(
    "raw",
    [
        "a\x00b",
        "README.md\x00.png",
        "README.md\n",
        "a\rb",
        "a\tb",
        "a\x1bb",
        "a\x7fb",
        "a\x85b",  # C1 NEL
        "a%00b",
        "a%0ab",
        "\u202egnp.exe",  # right-to-left override
        "a\u2066b",
        "a\u200fb",
    ],
)
def test_control_and_bidi_characters_are_refused(raw):
    message = _error(normalize_path, raw)
    assert "control" in message
    for ch in "\x00\n\r\t\x1b\x7f\x85\u202e\u2066\u200f":
        assert ch not in message  # escaped, never echoed raw


def test_trailing_newline_hint():
    assert "trailing newline" in _error(normalize_path, "README.md\n")


@pytest.mark.parametrize("raw", ["a/./b", "././a", "a/.", "a/%2e/b", "./%2e/x"])
def test_dot_segments_beyond_the_leading_one_are_refused(raw):
    assert "'.' segments" in _error(normalize_path, raw)


def test_long_paths_and_segments_are_refused():
    segment = "x" * 255
    assert normalize_path(segment) == segment
    assert "255 bytes" in _error(normalize_path, "x" * 256)
    # The limit is in UTF-8 bytes: 86 three-byte characters are 258 bytes.
    assert "255 bytes" in _error(normalize_path, "文" * 86)
    deep = "/".join(["abcdefg"] * 512)  # 4095 bytes
    assert normalize_path(deep) == deep
    assert f"{PATH_MAX_BYTES} bytes" in _error(normalize_path, deep + "xx")


def test_long_value_is_shortened_in_the_message():
    message = _error(normalize_path, "../" + "a" * 10_000)
    assert len(message) < 300
    assert "(10003 characters)" in message


def test_over_encoded_path_is_refused():
    raw = "%" + "25" * 12 + "2e"
    assert "percent-encoded more than" in _error(normalize_path, raw)


def test_path_must_be_a_string():
    assert "must be a string" in _error(normalize_path, 3)
    assert "must be a string" in _error(normalize_path, b"../x")


def test_field_name_is_used_in_path_messages():
    assert _error(normalize_path, "../x", field="base_path").startswith("base_path ")


_path_chars = st.sampled_from(list("ab/.\\%25eEfF0\x00 ~文")) | st.characters()


@settings(max_examples=500)
@given(st.text(_path_chars, max_size=40))
def test_normalised_paths_never_escape_the_repository(raw):
    try:
        result = normalize_path(raw)
    except ValidationError:
        return
    segments = result.split("/")
    assert ".." not in segments and "." not in segments
    assert not result.startswith("/") and not result.endswith("/")
    assert "\\" not in result and "\x00" not in result and "//" not in result
    assert all(ord(ch) >= 0x20 and not 0x7F <= ord(ch) <= 0x9F for ch in result)
    assert result == "" or all(segments)
    assert normalize_path(result) == result  # idempotent


@given(
    st.lists(
        st.sampled_from(["..", "%2e%2e", "%2E%2e", ".%2e", "%252e%252e", "\uff0e\uff0e"]),
        min_size=1,
        max_size=3,
    ),
    st.lists(st.sampled_from(["a", "docs", "x.md"]), max_size=3),
    st.sampled_from(["/", "%2f", "%2F", "%252f"]),
)
def test_any_mix_of_encoded_traversals_is_refused(dots, names, sep):
    parts = names + dots + names
    with pytest.raises(ValidationError):
        normalize_path(sep.join(parts))


# --------------------------------------------------------------------------------------------
# Refs (git check-ref-format) and SHAs
# --------------------------------------------------------------------------------------------

VALID_REFS = [
    "main",
    "feature/login",
    "release/v1.2.3",
    "v1.0.0",
    "refs/heads/main",
    "refs/tags/v1",
    "HEAD",
    "3f2a9c1",
    "a" * 40,
    "fix-#12",
    "user@domain",
    "emoji-🙂",
    "caf\u00e9",
    "a.b",
    "x" * 255,
]

INVALID_REFS = [
    ("", "branch name, tag name or commit SHA"),
    ("main..dev", "'..'"),
    ("a/../b", "'..'"),
    ("-main", "start with '-'"),
    ("--upload-pack=x", "start with '-'"),
    ("/main", "start or end with '/'"),
    ("main/", "start or end with '/'"),
    ("a//b", "'//'"),
    ("main.", "end with '.'"),
    ("main.lock", "'.lock'"),
    ("a.lock/b", "'.lock'"),
    (".hidden", "start with '.'"),
    ("a/.b", "start with '.'"),
    ("main@{1}", "'@{'"),
    ("@", "'@'"),
    ("a b", "spaces"),
    ("a~1", "'~'"),
    ("a^2", "'^'"),
    ("a:b", "':'"),
    ("a?", "'?'"),
    ("a*", "'*'"),
    ("a[1]", "'['"),
    ("a\\b", "'\\\\'"),
    ("a\x00b", "U+0000"),
    ("a\x7fb", "U+007F"),
    ("a\u200bb", "ZERO WIDTH SPACE"),
    ("a\u202eb", "RIGHT-TO-LEFT OVERRIDE"),
    ("a\u00a0b", "NO-BREAK SPACE"),
    ("x" * 256, "at most 255"),
]


@pytest.mark.parametrize("ref", VALID_REFS)
def test_valid_refs_are_accepted(ref):
    assert validate_ref(ref) == ref


@pytest.mark.parametrize(("ref", "expected"), INVALID_REFS)
def test_invalid_refs_are_refused_with_a_reason(ref, expected):
    message = _error(validate_ref, ref)
    assert expected in message


def test_ref_whitespace_is_trimmed():
    assert validate_ref(" main\n") == "main"


def test_ref_length_is_counted_in_bytes():
    assert "at most 255" in _error(validate_ref, "é" * 128)


def test_ref_field_name_is_used():
    assert _error(validate_ref, "a..b", field="base").startswith("base ")


@given(st.text(max_size=30))
def test_accepted_refs_obey_check_ref_format(ref):
    try:
        result = validate_ref(ref)
    except ValidationError:
        return
    assert ".." not in result and "@{" not in result and "//" not in result
    assert not result.startswith(("-", "/")) and not result.endswith(("/", ".", ".lock"))
    assert not any(ch in result for ch in " ~^:?*[\\")
    assert all(ord(ch) >= 0x20 and ord(ch) != 0x7F for ch in result)


@pytest.mark.parametrize(
    ("sha", "expected"),
    [
        ("abcd", "abcd"),
        ("3F2A9C1", "3f2a9c1"),
        ("a" * 40, "a" * 40),
        ("0" * 64, "0" * 64),
        (" deadbeef ", "deadbeef"),
    ],
)
def test_valid_shas(sha, expected):
    assert validate_sha(sha) == expected


@pytest.mark.parametrize("sha", ["", "abc", "a" * 65, "main", "g123456", "abcd ef", "0x1234", 1234])
def test_invalid_shas(sha):
    message = _error(validate_sha, sha)
    assert "sha" in message


# --------------------------------------------------------------------------------------------
# Numbers, pages, limits
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 42, MAX_NUMBER])
def test_valid_numbers(n):
    assert validate_number(n) == n


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "positive"),
        (-1, "positive"),
        (MAX_NUMBER + 1, "at most"),
        (True, "integer"),
        (False, "integer"),
        (1.0, "integer"),
        ("42", "integer"),
        (None, "integer"),
    ],
)
def test_invalid_numbers(n, expected):
    assert expected in _error(validate_number, n)


def test_number_field_name_is_used():
    assert _error(validate_number, 0, field="index").startswith("index ")


def test_page_defaults_and_bounds():
    assert validate_page(None) == 1
    assert validate_page(3) == 3
    assert "positive" in _error(validate_page, 0)
    assert "integer" in _error(validate_page, True)


def test_limit_defaults_and_bounds():
    assert validate_limit(None) == DEFAULT_LIMIT == 30
    assert validate_limit(1) == 1
    assert validate_limit(MAX_LIMIT) == MAX_LIMIT == 50
    message = _error(validate_limit, 51)
    assert "at most 50" in message and "page=2" in message
    assert "positive" in _error(validate_limit, 0)
    assert "integer" in _error(validate_limit, "10")


# --------------------------------------------------------------------------------------------
# escape_for_message
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "'abc'"),
        ("", "''"),
        ("café 文档", "'café 文档'"),
        ("a\x00b", "'a\\x00b'"),
        ("a\nb\tc\r", "'a\\nb\\tc\\r'"),
        ("it's", "'it\\'s'"),
        ("back\\slash", "'back\\\\slash'"),
        ("zw\u200bsp", "'zw\\u200bsp'"),
        ("\u202eevil", "'\\u202eevil'"),
        ("tag\U000e0041", "'tag\\U000e0041'"),
        ("nb\u00a0sp", "'nb\\xa0sp'"),
        (None, "None"),
        (42, "42"),
        (b"ab", "b'ab'"),
    ],
)
def test_escape_for_message(value, expected):
    assert escape_for_message(value) == expected


def test_escape_for_message_shortens_on_escape_boundaries():
    text = "\x00" * 100
    result = escape_for_message(text, max_len=10)
    assert result == "'\\x00\\x00…' (100 characters)"


def test_escape_for_message_caps_huge_non_strings():
    assert len(escape_for_message(list(range(10_000)))) <= 80
    assert len(escape_for_message(b"x" * 1_000_000)) <= 80


@given(st.text(), st.integers(min_value=8, max_value=100))
def test_escaped_text_is_printable_and_bounded(text, max_len):
    result = escape_for_message(text, max_len)
    assert result.isprintable()
    body = result[1:].rsplit("'", 1)[0]
    assert len(body) <= max_len + 1  # the content plus at most the ellipsis
