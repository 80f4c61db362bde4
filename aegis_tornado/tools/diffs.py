"""Unified diffs handed to a model: sensitive files cut out.

A diff is split into one section per file at every ``diff --git`` (or ``diff --cc`` /
``diff --combined``) line. A section is omitted when *any* name its header could mean is
sensitive: both sides of the ``diff --git`` line however it splits (a name may itself contain
`` b/``), the ``---``/``+++`` lines, and ``rename``/``copy`` ``from``/``to``. Names git quotes
(``"a/.env\\303\\251"``: non-ASCII, control characters, quotes, backslashes) are unquoted first.
A section whose header names nothing readable is omitted too: the filter fails closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .policy import PathPolicy
from .sanitize import truncate_utf8

if TYPE_CHECKING:
    from .base import ToolEnv

_SECTION = re.compile(r"^diff --(?:git|cc|combined) ", re.M)
_NAME_LINES = ("--- ", "+++ ", "rename from ", "rename to ", "copy from ", "copy to ")
_HEADER_END = ("@@", "Binary files ", "GIT binary patch")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_OMITTED = "[diff omitted: sensitive file, blocked by policy]\n"


def _unquote(text: str) -> tuple[str, str]:
    """A C-quoted name as git writes it (``"a/\\303\\251"``) → (name, rest of ``text``).

    ``text`` starts with ``"``. An unterminated name takes the whole text."""
    raw = bytearray()
    i = 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return raw.decode("utf-8", errors="replace"), text[i + 1 :]
        if char == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            octal = re.match(r"[0-7]{1,3}", text[i + 1 : i + 4])
            if octal:
                raw.append(int(octal.group(), 8) & 0xFF)
                i += 1 + len(octal.group())
                continue
            raw.append(_ESCAPES.get(nxt, ord(nxt) if ord(nxt) < 128 else 63))
            i += 2
            continue
        raw += char.encode("utf-8", errors="replace")
        i += 1
    return raw.decode("utf-8", errors="replace"), ""


def _name(text: str) -> str:
    """One name as it follows ``---``, ``rename from`` and the like (quoted or not)."""
    text = text.rstrip("\r\n")
    if text.startswith('"'):
        return _unquote(text)[0]
    return text.rstrip("\t")  # git ends a name containing a space with a tab


def _strip_prefix(name: str) -> str:
    return name[2:] if name[:2] in ("a/", "b/") else name


def _git_line_names(rest: str) -> Iterator[str]:
    """Every name the ``a/X b/Y`` part of a ``diff --git`` line could mean."""
    rest = rest.rstrip("\r\n")
    if rest.startswith('"'):
        first, tail = _unquote(rest)
        yield _strip_prefix(first)
        yield _strip_prefix(_name(tail.lstrip(" ")))
        return
    if rest.endswith('"') and ' "' in rest:  # a/X "b/Y"
        at = rest.index(' "')
        yield _strip_prefix(rest[:at])
        yield _strip_prefix(_unquote(rest[at + 1 :])[0])
    # Unquoted: the split is ambiguous when a name contains " b/", so try every one.
    for match in re.finditer(r" b/", rest):
        yield _strip_prefix(rest[: match.start()])
        yield _strip_prefix(rest[match.start() + 1 :])


def section_names(section: str) -> list[str]:
    """The file names a diff section's header could refer to (empty: none readable)."""
    lines = section.split("\n")
    first = lines[0]
    names: list[str] = []
    if first.startswith("diff --git "):
        names += [name for name in _git_line_names(first[len("diff --git ") :]) if name]
        if not names:
            return []  # the file's own line is unreadable: whatever follows cannot be trusted
    else:  # diff --cc NAME / diff --combined NAME
        names.append(_name(first.split(" ", 2)[2] if first.count(" ") >= 2 else ""))
    for line in lines[1:]:
        if line.startswith(_HEADER_END):
            break
        for prefix in _NAME_LINES:
            if line.startswith(prefix):
                name = _name(line[len(prefix) :])
                if name != "/dev/null":
                    names.append(_strip_prefix(name) if prefix in ("--- ", "+++ ") else name)
    return [name for name in dict.fromkeys(names) if name]


def filter_diff(diff: str, paths: PathPolicy) -> tuple[str, list[str]]:
    """The diff without the sections of sensitive files (a one-line note instead), and their
    names. A diff of a key file is the key file."""
    starts = [m.start() for m in _SECTION.finditer(diff)]
    if not starts:
        return diff, []
    kept = [diff[: starts[0]]]
    omitted: list[str] = []
    for start, end in zip(starts, starts[1:] + [len(diff)], strict=False):
        section = diff[start:end]
        names = section_names(section)
        blocked = [name for name in names if paths.is_sensitive(name)]
        if blocked or not names:
            omitted.append(blocked[-1] if blocked else "?")
            header = section.split("\n", 1)[0]  # as git wrote it: quoted, one line
            kept.append(f"{header}\n{_OMITTED}")
        else:
            kept.append(section)
    return "".join(kept), omitted


async def read_diff(env: ToolEnv, endpoint: str, what: str, **path: Any) -> dict[str, Any]:
    """The result fields for a commit's or pull request's diff: filtered, then capped at half
    the result size so the rest of the result always fits."""
    diff = await env.gitea(
        env.client.get_text(endpoint, diffType="diff", **path), what, (path["owner"], path["repo"])
    )
    diff, omitted = filter_diff(diff, env.paths)
    diff, cut = truncate_utf8(diff, env.max_result_bytes // 2)
    fields: dict[str, Any] = {"diff": diff, "diff_truncated": cut}
    if omitted:
        fields["diff_omitted_by_policy"] = omitted
    return fields
