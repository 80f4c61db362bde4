"""Checks on tool arguments before anything is sent to Gitea.

Every ``validate_*`` function returns the normalised value or raises :class:`ValidationError`.
The error message is written for the AI model that sent the argument and will retry: it says
which rule was broken, how to fix it, and quotes the offending value (shortened, with control
and invisible characters escaped, so the message itself is safe to log and to show).

The name rules mirror Gitea's own (``modules/validation/helpers.go`` ``IsValidUsername``,
``models/user`` ``IsUsableUsername``, ``models/repo`` ``IsUsableRepoName``, the
``MaxSize(40)``/``MaxSize(100)`` form bindings) and the ref rules mirror
``git check-ref-format``. A name that Gitea could never have created is refused here, so such a
request never reaches the upstream API at all.

Every limit on a tool argument is declared here once; the tools' input schemas
(``tools/schemas.py``) are built from these constants. Gitea's paging limits come from
``gitea/limits.py``. No I/O.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

from ..gitea.limits import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_PAGE",
    "MAX_LIMIT",
    "MAX_LINE",
    "MAX_NUMBER",
    "MAX_PAGE",
    "OWNER_MAX_LENGTH",
    "PATH_MAX_BYTES",
    "PATH_SEGMENT_MAX_BYTES",
    "REF_MAX_BYTES",
    "REPO_MAX_LENGTH",
    "RESERVED_OWNER_NAMES",
    "RESERVED_OWNER_SUFFIXES",
    "RESERVED_REPO_NAMES",
    "RESERVED_REPO_SUFFIXES",
    "SHA_MAX_LENGTH",
    "SHA_MIN_LENGTH",
    "ValidationError",
    "escape_for_message",
    "normalize_path",
    "validate_limit",
    "validate_line",
    "validate_number",
    "validate_owner",
    "validate_page",
    "validate_ref",
    "validate_repo",
    "validate_sha",
]

OWNER_MAX_LENGTH = 40  # Gitea: binding "Username;MaxSize(40)" for users and organisations
REPO_MAX_LENGTH = 100  # Gitea: binding "AlphaDashDot;MaxSize(100)" for repositories
PATH_MAX_BYTES = 4096  # PATH_MAX on Linux; Gitea/git have no smaller limit worth mirroring
PATH_SEGMENT_MAX_BYTES = 255  # NAME_MAX: no file system git runs on stores a longer name
REF_MAX_BYTES = 255
SHA_MIN_LENGTH = 4  # git's minimum abbreviation (core.abbrev cannot go lower)
SHA_MAX_LENGTH = 64  # SHA-256 object names
MAX_NUMBER = 2**31 - 1  # issue/PR indexes are int64 in Gitea, but nothing real exceeds int32
MAX_LINE = 10_000_000  # a line number (get_file_contents): far past any file Gitea serves
DEFAULT_PAGE = 1
MAX_PAGE = 100_000  # 5 million entries at the largest page size: beyond any real listing
DEFAULT_LIMIT = DEFAULT_PAGE_LIMIT
MAX_LIMIT = MAX_PAGE_LIMIT  # Gitea clamps silently; we say so instead

# models/user/user.go reservedUsernames (Gitea 1.2x). Names only a legacy instance could hold;
# Gitea refuses to create them, and most collide with web/API routes.
RESERVED_OWNER_NAMES = frozenset(
    {
        ".",
        "..",
        ".well-known",
        "api",
        "metrics",
        "v2",
        "assets",
        "attachments",
        "avatar",
        "avatars",
        "repo-avatars",
        "captcha",
        "login",
        "org",
        "repo",
        "user",
        "explore",
        "issues",
        "pulls",
        "milestones",
        "notifications",
        "favicon.ico",
        "manifest.json",
        "robots.txt",
        "sitemap.xml",
        "ssh_info",
        "swagger.v1.json",
        "ghost",
        "gitea-actions",
    }
)
# reservedUserPatterns: "/{user}.keys" etc. are served by the user's own sub-routes.
RESERVED_OWNER_SUFFIXES = (".keys", ".gpg", ".rss", ".atom", ".png")
# models/repo/repo.go reservedRepoNames / reservedRepoPatterns. ".wiki" matters most: "r.wiki"
# addresses the wiki repository of "r" on the git routes.
RESERVED_REPO_NAMES = frozenset({".", "..", "-"})
RESERVED_REPO_SUFFIXES = (".git", ".wiki", ".rss", ".atom")

_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_NAME_BAD_CHAR = re.compile(r"[^A-Za-z0-9._-]")
_CONSECUTIVE_SPECIALS = re.compile(r"[-._]{2}")
_SHA = re.compile(r"[0-9a-fA-F]+")
_MULTI_SLASH = re.compile(r"/{2,}")
# Characters refused anywhere in a path: C0/C1 controls (NUL included), DEL, lone surrogates
# (not encodable, so not a real file name) and the Unicode bidi controls, which make a path
# display differently from what it is ("Trojan Source").
_PATH_BAD_CHAR = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
# git check-ref-format rule 4/5/10 characters (controls are checked by category).
_REF_BAD_ASCII = frozenset(" ~^:?*[\\")
# Anything that is not a visible character is refused in refs: git would accept most of it,
# but a ref name with an invisible or bidi character is a spoofing attempt, not a branch.
_REF_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zs", "Zl", "Zp"})
_MAX_PERCENT_DECODE_ROUNDS = 8
_ELLIPSIS = "\u2026"


class ValidationError(ValueError):
    """A tool argument is unusable. ``str(error)`` is addressed to the model that sent it.

    ``field`` names the argument (``"owner"``, ``"path"``, ...) so the caller can point at it.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @property
    def message(self) -> str:
        return str(self)


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------

_NAMED_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    named = _NAMED_ESCAPES.get(ch)
    if named is not None:
        return named
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_for_message(value: object, max_len: int = 80) -> str:
    """Quote ``value`` for an error message: escaped, single-quoted and at most ``max_len`` long.

    Strings come back like ``repr`` would show them (``'a\\x00b'``): control, format, bidi and
    other invisible characters are written as escapes, so nothing in the message is hidden or
    reorders the text around it. Visible non-ASCII text (``'café'``, ``'文档'``) is kept. A
    longer string is cut on an escape boundary and marked ``'abc…' (5000 characters)``.
    Other values are shown with ``repr``, shortened the same way.
    """
    max_len = max(int(max_len), 8)
    if not isinstance(value, str):
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value[: max_len + 1])  # repr of the head only: inputs can be huge
        text = repr(value)
        if len(text) > max_len:
            return text[: max_len - 1] + _ELLIPSIS
        return text
    pieces: list[str] = []
    used = 0
    truncated = False
    for ch in value[: max_len + 1]:
        piece = _escape_char(ch)
        if used + len(piece) > max_len:
            truncated = True
            break
        pieces.append(piece)
        used += len(piece)
    if not truncated and len(value) > len(pieces):
        truncated = True
    if truncated:
        return f"'{''.join(pieces)}{_ELLIPSIS}' ({len(value)} characters)"
    return f"'{''.join(pieces)}'"


def _describe_char(ch: str) -> str:
    """``'~'`` for visible ASCII, ``U+200B ZERO WIDTH SPACE`` for anything else."""
    if " " < ch < "\x7f":
        return f"'{_escape_char(ch)}'"
    name = unicodedata.name(ch, "")
    code = f"U+{ord(ch):04X}"
    if name:
        return f"{code} {name}"
    if unicodedata.category(ch) == "Cc":
        return f"{code} (a control character)"
    return code


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _require_str(value: object, field: str, example: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(
            f"{field} must be a string such as {example!r}; got {_type_name(value)} "
            f"{escape_for_message(value)}",
            field=field,
        )
    return value


# --------------------------------------------------------------------------------------------
# Owner and repository names
# --------------------------------------------------------------------------------------------


def _check_name_chars(text: str, field: str, what: str, got: str) -> None:
    bad = _NAME_BAD_CHAR.search(text)
    if bad:
        raise ValidationError(
            f"{field} must be a Gitea {what} name made only of ASCII letters, digits, '-', '_' "
            f"and '.'; got {got}, which contains {_describe_char(bad.group())}",
            field=field,
        )


def validate_owner(name: object) -> str:
    """A Gitea user or organisation name, as Gitea itself would accept it.

    Surrounding whitespace is dropped and the case is kept (Gitea matches names
    case-insensitively). Rules: 1-40 characters of ``A-Z a-z 0-9 - _ .``; starts with a letter
    or digit; does not end with ``-``, ``_`` or ``.``; no two of those in a row; not a name
    Gitea reserves (``api``, ``explore``, ... or ``*.keys``, ``*.gpg``, ``*.rss``, ``*.atom``,
    ``*.png``).
    """
    field = "owner"
    text = _require_str(name, field, "octo-org").strip()
    got = escape_for_message(text)
    if not text:
        raise ValidationError(
            "owner must be the name of a Gitea user or organisation, e.g. 'octo-org'; got ''",
            field=field,
        )
    if len(text) > OWNER_MAX_LENGTH:
        raise ValidationError(
            f"owner must be at most {OWNER_MAX_LENGTH} characters long (Gitea's limit for user "
            f"and organisation names); got {got}",
            field=field,
        )
    _check_name_chars(text, field, "user or organisation", got)
    if not text[0].isalnum():
        raise ValidationError(
            f"owner must start with a letter or digit; got {got}. Pass only the owner name, "
            "e.g. 'octo-org' for 'octo-org/repo'",
            field=field,
        )
    if text[-1] in "-._":
        raise ValidationError(f"owner must not end with '-', '_' or '.'; got {got}", field=field)
    if _CONSECUTIVE_SPECIALS.search(text):
        raise ValidationError(
            f"owner must not contain two of '-', '_', '.' in a row (Gitea forbids it); got {got}",
            field=field,
        )
    lower = text.lower()
    if lower in RESERVED_OWNER_NAMES:
        raise ValidationError(
            f"owner {got} is a name Gitea reserves for its own pages, so no user or "
            "organisation can have it; check the owner name",
            field=field,
        )
    for suffix in RESERVED_OWNER_SUFFIXES:
        if lower.endswith(suffix):
            raise ValidationError(
                f"owner must not end with {suffix!r} (Gitea reserves it); got {got}. "
                f"Pass the bare user or organisation name",
                field=field,
            )
    return text


def validate_repo(name: object) -> str:
    """A Gitea repository name (without the owner), as Gitea itself would accept it.

    Surrounding whitespace is dropped and the case is kept. Rules: 1-100 characters of
    ``A-Z a-z 0-9 - _ .``; no ``..``; not ``.``, ``..`` or ``-``; not ending in ``.git``,
    ``.wiki``, ``.rss`` or ``.atom`` (case-insensitive).
    """
    field = "repo"
    text = _require_str(name, field, "my-repo").strip()
    got = escape_for_message(text)
    if not text:
        raise ValidationError(
            "repo must be the name of a repository without its owner, e.g. 'my-repo'; got ''",
            field=field,
        )
    if "/" in text:
        raise ValidationError(
            f"repo must be the repository name only, without the owner or any path; got {got}. "
            "For 'octo-org/my-repo' pass owner='octo-org' and repo='my-repo'",
            field=field,
        )
    if len(text) > REPO_MAX_LENGTH:
        raise ValidationError(
            f"repo must be at most {REPO_MAX_LENGTH} characters long (Gitea's limit for "
            f"repository names); got {got}",
            field=field,
        )
    _check_name_chars(text, field, "repository", got)
    if ".." in text:
        raise ValidationError(
            f"repo must not contain '..' (Gitea forbids it in repository names); got {got}",
            field=field,
        )
    lower = text.lower()
    if lower in RESERVED_REPO_NAMES:
        raise ValidationError(
            f"repo {got} is reserved by Gitea and cannot name a repository", field=field
        )
    for suffix in RESERVED_REPO_SUFFIXES:
        if lower.endswith(suffix):
            bare = text[: -len(suffix)]
            hint = f"; use {escape_for_message(bare)}" if bare else ""
            raise ValidationError(
                f"repo must not end with {suffix!r} (Gitea reserves that suffix); got {got}{hint}",
                field=field,
            )
    return text


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def _check_path_chars(stage: str, field: str, got: str, decoded_note: str) -> None:
    bad = _PATH_BAD_CHAR.search(stage)
    if bad:
        raise ValidationError(
            f"{field} must not contain control or bidirectional-control characters; got {got}"
            f"{decoded_note}, which contains {_describe_char(bad.group())} at position "
            f"{bad.start()}. Remove it"
            + (" (a trailing newline is a common cause)" if bad.group() in "\r\n" else ""),
            field=field,
        )
    if "\\" in stage:
        raise ValidationError(
            f"{field} must use '/' to separate directories, not backslashes; got {got}"
            f"{decoded_note}. Write 'dir/file.txt', not 'dir\\file.txt'",
            field=field,
        )


def _normalize_path_stage(stage: str, field: str, got: str, decoded_note: str) -> str:
    """Check one (raw or percent-decoded) form of a path and return its normalised form."""
    _check_path_chars(stage, field, got, decoded_note)
    if stage.startswith("/"):
        hint = (
            " Use '' (empty) for the repository root."
            if stage.strip("/") == ""
            else (f" Drop the leading '/': write {escape_for_message(stage.lstrip('/'))}.")
        )
        raise ValidationError(
            f"{field} must be relative to the repository root, without a leading '/'; got "
            f"{got}{decoded_note}.{hint}",
            field=field,
        )
    collapsed = _MULTI_SLASH.sub("/", stage)
    if collapsed == ".":
        collapsed = ""
    elif collapsed.startswith("./"):
        collapsed = collapsed[2:]
    if collapsed.endswith("/"):
        collapsed = collapsed[:-1]
    if not collapsed:
        return ""
    for segment in collapsed.split("/"):
        folded = unicodedata.normalize("NFKC", segment)
        if segment == ".." or folded == "..":
            raise ValidationError(
                f"{field} must be relative to the repository root and must not contain '..'; "
                f"got {got}{decoded_note}",
                field=field,
            )
        if segment == "." or folded == ".":
            raise ValidationError(
                f"{field} must not contain '.' segments (only a single leading './' is "
                f"allowed); got {got}{decoded_note}. Write 'a/b', not 'a/./b'",
                field=field,
            )
        if len(segment.encode("utf-8")) > PATH_SEGMENT_MAX_BYTES:
            raise ValidationError(
                f"{field} has a file or directory name longer than {PATH_SEGMENT_MAX_BYTES} "
                f"bytes, which no repository can contain; got {got}",
                field=field,
            )
    return collapsed


def _percent_decoded_forms(text: str, field: str, got: str) -> list[str]:
    """Every distinct form ``text`` takes when percent-decoded again and again, until stable."""
    forms: list[str] = []
    current = text
    for _ in range(_MAX_PERCENT_DECODE_ROUNDS):
        if "%" not in current:
            return forms
        decoded = unquote(current, errors="replace")
        if decoded == current:
            return forms
        forms.append(decoded)
        current = decoded
    if "%" in current and unquote(current, errors="replace") != current:
        raise ValidationError(
            f"{field} is percent-encoded more than {_MAX_PERCENT_DECODE_ROUNDS} times; pass the "
            f"plain path, e.g. 'docs/read me.md' rather than 'docs/read%20me.md'; got {got}",
            field=field,
        )
    return forms


def normalize_path(path: object, *, allow_empty: bool = True, field: str = "path") -> str:
    """A file or directory path relative to the repository root, normalised.

    Returns the path with a single leading ``./`` removed, duplicate slashes collapsed and a
    trailing slash dropped; ``""`` (also for ``None``, ``"."`` and ``"./"``) means the root and
    is refused when ``allow_empty`` is false. Unicode is allowed.

    Refused: absolute paths, ``..`` segments, ``.`` segments other than the leading ``./``,
    backslashes, control characters (NUL included) and bidi controls, paths over
    ``PATH_MAX_BYTES`` and names over ``PATH_SEGMENT_MAX_BYTES`` (UTF-8 bytes). The same checks
    are repeated on every percent-decoded form of the path (``%2e%2e/``, ``..%2f``,
    ``%252e%252e``, ...), so a traversal is refused whichever layer might decode it.

    Percent signs are *not* decoded in the result: ``a%20b`` names a file called ``a%20b``. The
    caller must percent-encode the returned path when it builds a URL.
    """
    if path is None:
        path = ""
    text = _require_str(path, field, "docs/README.md")
    got = escape_for_message(text)
    if len(text.encode("utf-8", "surrogatepass")) > PATH_MAX_BYTES:
        raise ValidationError(
            f"{field} must be at most {PATH_MAX_BYTES} bytes long; got {got}", field=field
        )
    normalized = _normalize_path_stage(text, field, got, "")
    for decoded in _percent_decoded_forms(text, field, got):
        _normalize_path_stage(
            decoded, field, got, f" (percent-decoded: {escape_for_message(decoded)})"
        )
    if not normalized and not allow_empty:
        raise ValidationError(
            f"{field} must name a file or directory inside the repository, e.g. 'README.md'; "
            f"the repository root ('') is not accepted here; got {got}",
            field=field,
        )
    return normalized


# --------------------------------------------------------------------------------------------
# Refs and SHAs
# --------------------------------------------------------------------------------------------


def _ref_problem(ref: str) -> str | None:
    """Why ``ref`` breaks git check-ref-format (as a branch/tag/sha), or None."""
    for ch in ref:
        if ch in _REF_BAD_ASCII or unicodedata.category(ch) in _REF_BAD_CATEGORIES:
            if ch == " ":
                return "it must not contain spaces"
            return f"it must not contain {_describe_char(ch)}"
    if ref == "@":
        return "it must not be the single character '@'"
    if ref.startswith("-"):
        return "it must not start with '-'"
    if ref.startswith("/") or ref.endswith("/"):
        return "it must not start or end with '/'"
    if "//" in ref:
        return "it must not contain '//'"
    if ".." in ref:
        return "it must not contain '..' (to compare two refs, pass them as separate arguments)"
    if "@{" in ref:
        return "it must not contain '@{' (reflog syntax is not supported)"
    if ref.endswith("."):
        return "it must not end with '.'"
    for component in ref.split("/"):
        if component.startswith("."):
            return "no '/'-separated part of it may start with '.'"
        if component.endswith(".lock"):
            return "no '/'-separated part of it may end with '.lock'"
    return None


def validate_ref(ref: object, *, field: str = "ref") -> str:
    """A branch name, tag name or commit SHA, checked by ``git check-ref-format`` rules.

    Surrounding whitespace is dropped. Also accepts full refs such as ``refs/heads/main``.
    Refused: ``..``, ``@{``, a lone ``@``, ASCII controls, space and ``~ ^ : ? * [ \\``,
    invisible/bidi/format characters, a leading ``-``, a leading or trailing ``/``, ``//``, a
    trailing ``.``, a part starting with ``.`` or ending in ``.lock``, and more than
    ``REF_MAX_BYTES`` bytes.
    """
    text = _require_str(ref, field, "main").strip()
    got = escape_for_message(text)
    if not text:
        raise ValidationError(
            f"{field} must be a branch name, tag name or commit SHA, e.g. 'main', 'v1.2.0' or "
            "'3f2a9c1'; got ''",
            field=field,
        )
    if len(text.encode("utf-8", "surrogatepass")) > REF_MAX_BYTES:
        raise ValidationError(
            f"{field} must be at most {REF_MAX_BYTES} bytes long; got {got}", field=field
        )
    problem = _ref_problem(text)
    if problem:
        raise ValidationError(
            f"{field} must be a valid git branch, tag or commit name: {problem}; got {got}",
            field=field,
        )
    return text


def validate_sha(sha: object, *, field: str = "sha") -> str:
    """A (possibly abbreviated) commit or object SHA: 4-64 hex characters, returned lower-case.

    Branch and tag names are refused here; use :func:`validate_ref` where they are allowed.
    """
    text = _require_str(sha, field, "3f2a9c1").strip()
    got = escape_for_message(text)
    if not _SHA.fullmatch(text) or not SHA_MIN_LENGTH <= len(text) <= SHA_MAX_LENGTH:
        raise ValidationError(
            f"{field} must be a commit SHA of {SHA_MIN_LENGTH} to {SHA_MAX_LENGTH} hexadecimal "
            f"characters (0-9, a-f), e.g. '3f2a9c1'; branch and tag names are not accepted "
            f"here; got {got}",
            field=field,
        )
    return text.lower()


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def _bounded_int(value: object, field: str, example: int, maximum: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"{field} must be an integer such as {example}, not {_type_name(value)}; got "
            f"{escape_for_message(value)}",
            field=field,
        )
    if value < 1:
        raise ValidationError(
            f"{field} must be a positive integer (1 or more); got {value}", field=field
        )
    if value > maximum:
        raise ValidationError(
            f"{field} must be at most {maximum}; got {escape_for_message(value)}{hint}",
            field=field,
        )
    return int(value)


def validate_number(n: object, *, field: str = "number") -> int:
    """An issue or pull-request number: an ``int`` (not ``bool``) from 1 to ``MAX_NUMBER``."""
    return _bounded_int(n, field, 42, MAX_NUMBER)


def validate_line(n: object, *, field: str = "start_line") -> int:
    """A 1-based line number: an ``int`` (not ``bool``) from 1 to ``MAX_LINE``."""
    return _bounded_int(n, field, 1, MAX_LINE)


def validate_page(page: object) -> int:
    """A 1-based page number up to ``MAX_PAGE``; ``None`` means ``DEFAULT_PAGE``."""
    if page is None:
        return DEFAULT_PAGE
    return _bounded_int(page, "page", 2, MAX_PAGE)


def validate_limit(limit: object) -> int:
    """Items per page, 1 to ``MAX_LIMIT``; ``None`` means ``DEFAULT_LIMIT``.

    Gitea silently clamps larger values; refusing them tells the model to page instead.
    """
    if limit is None:
        return DEFAULT_LIMIT
    return _bounded_int(
        limit,
        "limit",
        DEFAULT_LIMIT,
        MAX_LIMIT,
        f". Ask for at most {MAX_LIMIT} and use page=2, 3, ... for more",
    )
