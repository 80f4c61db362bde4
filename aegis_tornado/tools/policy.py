"""Which repositories, and which files in them, the model may reach.

:class:`RepoPolicy` is the operator's allow/deny list of repositories; :class:`PathPolicy` the
list of sensitive file globs whose content is never returned. Both are built once from the
settings (a bad pattern raises ``ValueError`` naming it, which the settings loader turns into a
start-up error) and are then immutable and side-effect free, so one instance can be shared by
every request.

Both fail closed: a name or path the policy cannot interpret is treated as not allowed or as
sensitive, never the other way round.

Stdlib only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple, TypeVar
from urllib.parse import unquote

from .validation import ValidationError, validate_owner, validate_repo

__all__ = ["DEFAULT_SENSITIVE_PATHS", "PathPolicy", "RepoPolicy", "displayed_name"]

T = TypeVar("T")

#: Files whose content is never returned, unless SENSITIVE_PATHS replaces the list.
#: docs/SECURITY.md documents each one in a table (a test keeps the two in step).
DEFAULT_SENSITIVE_PATHS: tuple[str, ...] = (
    # Environment and secrets files
    ".env*",
    "secrets.*",
    # Private keys and keystores
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    # Password databases
    "*.kdbx",
    # Credential stores of common tools
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".htpasswd",
    ".vault-token",
    ".dockercfg",
    "**/.docker/config.json",
    "**/.aws/credentials",
    "**/.kube/config",
    # Infrastructure state: holds every secret it provisioned
    "*.tfstate",
    "*.tfstate.backup",
)

# What a name handed to ``allows`` may look like. Deliberately looser than validate_owner /
# validate_repo (legacy Gitea accounts can break today's creation rules), but strict enough
# that nothing outside Gitea's character set can ever match a pattern.
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_MAX_PERCENT_DECODE_ROUNDS = 4


def _reject_single_string(value: object, what: str) -> None:
    if isinstance(value, (str, bytes)):
        raise ValueError(
            f"{what} must be a list of patterns, not a single string ({value!r}); "
            f"write [{value!r}] for one pattern"
        )


# --------------------------------------------------------------------------------------------
# Repositories
# --------------------------------------------------------------------------------------------


class _RepoPattern(NamedTuple):
    owner: str  # lower-case
    repo: str | None  # lower-case; None for "owner/*"
    text: str  # as configured, for messages


def _parse_repo_pattern(pattern: object, kind: str) -> _RepoPattern:
    if not isinstance(pattern, str):
        raise ValueError(
            f"invalid {kind} pattern {pattern!r}: expected a string 'owner/repo' or 'owner/*'"
        )
    text = pattern.strip()
    owner, slash, repo = text.partition("/")
    if not slash or "/" in repo or not owner or not repo:
        raise ValueError(f"invalid {kind} pattern {pattern!r}: expected 'owner/repo' or 'owner/*'")
    if "*" in owner:
        raise ValueError(
            f"invalid {kind} pattern {pattern!r}: the owner cannot be a wildcard; list each "
            "owner explicitly (an empty allow list already means every repository the bot "
            "account can see)"
        )
    try:
        validate_owner(owner)
    except ValidationError as error:
        raise ValueError(f"invalid {kind} pattern {pattern!r}: {error}") from None
    if repo == "*":
        return _RepoPattern(owner.lower(), None, text)
    if "*" in repo:
        raise ValueError(
            f"invalid {kind} pattern {pattern!r}: '*' must stand alone for the whole repository "
            "part ('owner/*'); partial wildcards such as 'owner/app-*' are not supported"
        )
    try:
        validate_repo(repo)
    except ValidationError as error:
        raise ValueError(f"invalid {kind} pattern {pattern!r}: {error}") from None
    return _RepoPattern(owner.lower(), repo.lower(), text)


def _parse_repo_patterns(patterns: Sequence[str] | None, kind: str) -> tuple[_RepoPattern, ...]:
    if patterns is None:
        return ()
    _reject_single_string(patterns, kind)
    return tuple(_parse_repo_pattern(p, kind) for p in patterns)


def _name_key(value: object) -> str | None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        return None
    return value.lower()


def _split_full_name(item: object) -> tuple[object, object] | None:
    """``"owner/repo"`` or ``(owner, repo)`` → the pair; anything else → None."""
    if isinstance(item, str):
        owner, slash, repo = item.partition("/")
        return (owner, repo) if slash else None
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1]
    return None


class RepoPolicy:
    """The repositories the model may reach, as ``owner/repo`` and ``owner/*`` patterns.

    - An empty ``allow`` list means every repository the Gitea bot account can see.
    - ``deny`` always wins over ``allow``.
    - Matching is case-insensitive, as Gitea's names are.
    - Owner wildcards (``*/repo``) and partial wildcards (``owner/app-*``) are refused at
      construction with a ``ValueError`` that names the pattern.
    """

    def __init__(self, allow: Sequence[str] | None = (), deny: Sequence[str] | None = ()) -> None:
        allow_patterns = _parse_repo_patterns(allow, "allow")
        deny_patterns = _parse_repo_patterns(deny, "deny")
        self._allow = tuple(p.text for p in allow_patterns)
        self._deny = tuple(p.text for p in deny_patterns)
        self._allow_owners = frozenset(p.owner for p in allow_patterns if p.repo is None)
        self._allow_repos = frozenset((p.owner, p.repo) for p in allow_patterns if p.repo)
        # Deny patterns keep their configured text so a refusal can name the pattern.
        self._deny_owners = {p.owner: p.text for p in deny_patterns if p.repo is None}
        self._deny_repos = {(p.owner, p.repo): p.text for p in deny_patterns if p.repo}
        # Owners named by at least one pattern, for the listing helpers.
        self._allow_repo_owners = frozenset(owner for owner, _ in self._allow_repos)
        self._deny_repo_owners = frozenset(owner for owner, _ in self._deny_repos)

    @property
    def allow(self) -> tuple[str, ...]:
        """The allow patterns as configured (whitespace trimmed)."""
        return self._allow

    @property
    def deny(self) -> tuple[str, ...]:
        """The deny patterns as configured (whitespace trimmed)."""
        return self._deny

    @property
    def unrestricted(self) -> bool:
        """True when neither list is set: every repository the bot can see is allowed."""
        return not self._allow and not self._deny

    def __repr__(self) -> str:
        return f"RepoPolicy(allow={list(self._allow)!r}, deny={list(self._deny)!r})"

    def denial_reason(self, owner: object, repo: object) -> str | None:
        """Why ``owner/repo`` is refused (for logs), or None when it is allowed."""
        o, r = _name_key(owner), _name_key(repo)
        if o is None or r is None:
            return "not a valid owner/repository name"
        if o in self._deny_owners:
            return f"denied by pattern {self._deny_owners[o]!r}"
        if (o, r) in self._deny_repos:
            return f"denied by pattern {self._deny_repos[(o, r)]!r}"
        if not self._allow:
            return None
        if o in self._allow_owners or (o, r) in self._allow_repos:
            return None
        return "not in the allow list"

    def allows(self, owner: object, repo: object) -> bool:
        """May the model reach ``owner/repo``? Invalid names are never allowed."""
        return self.denial_reason(owner, repo) is None

    def allows_full_name(self, full_name: object) -> bool:
        """:meth:`allows` for ``"owner/repo"`` (Gitea's ``full_name``)."""
        pair = _split_full_name(full_name) if isinstance(full_name, str) else None
        return pair is not None and self.allows(*pair)

    def allows_owner_fully(self, owner: object) -> bool:
        """True when *every* repository of ``owner`` is allowed, so a listing of the owner's
        repositories needs no per-repository filtering."""
        o = _name_key(owner)
        if o is None or o in self._deny_owners or o in self._deny_repo_owners:
            return False
        return not self._allow or o in self._allow_owners

    def may_allow_owner(self, owner: object) -> bool:
        """True when *some* repository of ``owner`` could be allowed; False means a request
        about this owner can be refused without asking Gitea anything."""
        o = _name_key(owner)
        if o is None or o in self._deny_owners:
            return False
        return not self._allow or o in self._allow_owners or o in self._allow_repo_owners

    def filter(self, items: Iterable[T], key: Callable[[T], object] | None = None) -> list[T]:
        """The allowed items, in order.

        ``key(item)`` (default: the item itself) must give ``"owner/repo"`` or an
        ``(owner, repo)`` pair, e.g. ``key=lambda r: r["full_name"]`` for Gitea repositories.
        Items whose key is anything else are dropped.
        """
        kept: list[T] = []
        for item in items:
            pair = _split_full_name(key(item) if key is not None else item)
            if pair is not None and self.allows(*pair):
                kept.append(item)
        return kept


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def _translate_glob(glob: str, whole_path: bool) -> str:
    """A regex (for ``fullmatch``) equivalent to a shell-style glob.

    ``*`` and ``?`` never cross ``/``; ``[...]``/``[!...]`` are character classes; in whole-path
    globs ``**`` crosses directories and ``**/`` also matches no directory at all.
    """
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            j = i
            while j < n and glob[j] == "*":
                j += 1
            if whole_path and j - i >= 2:
                if (i == 0 or glob[i - 1] == "/") and j < n and glob[j] == "/":
                    out.append("(?:[^/]*/)*")
                    i = j + 1
                    continue
                out.append(".*")
            else:
                out.append("[^/]*")
            i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = i + 1
            if j < n and glob[j] in "!^":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal '['
                out.append(re.escape(c))
                i += 1
                continue
            content = glob[i + 1 : j]
            negate = content[:1] in ("!", "^")
            if negate:
                content = content[1:]
            content = "".join("\\" + ch if ch in "\\[]^&~|" else ch for ch in content)
            out.append(f"[^/{content}]" if negate else f"[{content}]")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


# What never shows when a name is displayed. Deliberately wider than what the sanitiser strips
# from results (tools/sanitize.py, which may keep a character in context): for matching, seeing
# more names as sensitive is the safe side. Invisible/format/bidi characters, joiners, variation
# selectors, tags, fillers and blanks (U+2800 BRAILLE PATTERN BLANK, Hangul fillers), line and
# paragraph separators, private-use characters, controls.
_INVISIBLE_IN_NAMES = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0"
    "\ufff0-\ufffb\ue000-\uf8ff\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff\U000f0000-\U0010ffff]"
)
# And any other character of these categories (new format characters, lone surrogates).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})


def displayed_name(name: str) -> str:
    """``name`` as a reader sees it, for matching: invisible characters removed, each
    ``/``-separated part trimmed of surrounding white space, NFC, case-folded.

    ``deploy/key.pem`` followed by U+200B is shown as ``deploy/key.pem``, so the policy must
    judge it as ``deploy/key.pem``. (One function of the policy's own, so what the sanitiser
    strips from results can change without changing what the policy sees.)
    """
    if name.isascii() and name.isprintable():
        return "/".join(part.strip() for part in name.split("/")).casefold()
    visible = "".join(
        ch
        for ch in _INVISIBLE_IN_NAMES.sub("", name)
        if unicodedata.category(ch) not in _INVISIBLE_CATEGORIES
    )
    trimmed = "/".join(part.strip() for part in visible.split("/"))
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", trimmed).casefold())


def _matching_forms(path: str) -> list[str]:
    """The forms of ``path`` a glob is matched against: the raw name (refused as it is), the
    name as displayed, and that name's compatibility form (NFKC: full-width ``．ｅｎｖ`` is
    read as ``.env``)."""
    shown = displayed_name(path)
    forms = [path]
    if shown != path.lower():
        forms.append(shown)
    if not shown.isascii():
        compatible = unicodedata.normalize("NFKC", shown).casefold()
        if compatible not in forms:
            forms.append(compatible)
    return forms


class _PathGlob(NamedTuple):
    text: str  # as configured
    regex: re.Pattern[str]
    whole_path: bool


def _compile_path_glob(glob: object) -> _PathGlob:
    if not isinstance(glob, str) or not glob.strip():
        raise ValueError(f"invalid sensitive-path glob {glob!r}: expected a non-empty string")
    text = glob.strip()
    if "\\" in text:
        raise ValueError(
            f"invalid sensitive-path glob {glob!r}: use '/' to separate directories (and "
            "'[*]' to match a literal '*'); backslashes are not supported"
        )
    body = text.rstrip("/")  # "secrets/" means the directory "secrets"
    anchored = body.startswith("/")  # "/config.yml" means the one at the repository root
    body = body.lstrip("/")
    if not body:
        raise ValueError(f"invalid sensitive-path glob {glob!r}: it would match every path")
    whole_path = anchored or "/" in body
    regex = re.compile(_translate_glob(body, whole_path), re.IGNORECASE | re.DOTALL)
    return _PathGlob(text, regex, whole_path)


def _path_forms(path: str) -> list[list[str]]:
    """The segments of ``path`` and of each of its percent-decoded forms.

    Defence in depth: tools pass paths through validation.normalize_path (which keeps '%'
    literal), but if anything downstream ever decoded once more, ``%2eenv`` would be ``.env``.
    Backslashes are treated as separators too, for the same reason.
    """
    forms = [path]
    current = path
    for _ in range(_MAX_PERCENT_DECODE_ROUNDS):
        if "%" not in current:
            break
        decoded = unquote(current, errors="replace")
        if decoded == current:
            break
        forms.append(decoded)
        current = decoded
    result = []
    for form in forms:
        segments = [s for s in re.split(r"[/\\]+", form) if s and s != "."]
        if segments:
            result.append(segments)
    return result


class PathPolicy:
    """Sensitive files whose content is never returned to the model.

    ``globs=None`` uses :data:`DEFAULT_SENSITIVE_PATHS`; a list replaces it (include the
    defaults explicitly to extend them); an empty list blocks nothing.

    - A glob without ``/`` (``.env*``) is matched against the name of the file *and* of every
      directory on its path, so ``.env``, ``config/.env.local`` and ``.env/x`` are all blocked.
    - A glob with ``/`` (``config/*.yml``, ``**/secrets/*.json``) is matched against the whole
      path from the repository root, and against every parent directory of it, so blocking a
      directory blocks what is inside. A leading ``/`` only anchors (``/config.yml`` is the
      file at the root); a trailing ``/`` is ignored.
    - ``*`` and ``?`` stay within one name; ``**`` (with ``/``) crosses directories.
    - Matching ignores case, so ``ID_RSA`` and ``.ENV`` are caught as they would be on a
      case-insensitive file system.
    - A path is matched as it is *and* as it is displayed (:func:`displayed_name`: invisible
      characters removed, NFC, case-folded; and its NFKC form), so ``deploy/key.pem`` + U+200B
      or a full-width ``．ｅｎｖ`` is as sensitive as the name it shows.
    """

    def __init__(self, globs: Sequence[str] | None = None) -> None:
        if globs is None:
            globs = DEFAULT_SENSITIVE_PATHS
        _reject_single_string(globs, "sensitive-path globs")
        self._globs = tuple(_compile_path_glob(g) for g in globs)

    @property
    def globs(self) -> tuple[str, ...]:
        """The globs in force, as configured (whitespace trimmed)."""
        return tuple(g.text for g in self._globs)

    def __repr__(self) -> str:
        return f"PathPolicy({list(self.globs)!r})"

    def blocked_reason(self, path: str) -> str | None:
        """The glob that makes ``path`` sensitive, or None. The root (``""``) never is."""
        if not isinstance(path, str):
            raise TypeError(f"path must be a string, not {type(path).__name__}")
        for segments in (seg for form in _matching_forms(path) for seg in _path_forms(form)):
            prefixes = ["/".join(segments[: i + 1]) for i in range(len(segments))]
            for glob in self._globs:
                if glob.whole_path:
                    if any(glob.regex.fullmatch(prefix) for prefix in prefixes):
                        return glob.text
                elif any(glob.regex.fullmatch(segment) for segment in segments):
                    return glob.text
        return None

    def is_sensitive(self, path: str) -> bool:
        """True when the content at ``path`` must not be returned."""
        return self.blocked_reason(path) is not None

    def filter(self, items: Iterable[T], key: Callable[[T], str] | None = None) -> list[T]:
        """The items whose path (``key(item)``, default the item) is not sensitive, in order."""
        kept: list[T] = []
        for item in items:
            path = key(item) if key is not None else item
            if isinstance(path, str) and not self.is_sensitive(path):
                kept.append(item)
        return kept
