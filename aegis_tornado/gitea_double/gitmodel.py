"""A tiny in-memory git: blobs, trees and commits hashed exactly as git hashes them.

Enough for the double to answer trees, contents, commits and diffs consistently: every SHA is the
real git object id of its content, so a tree SHA found in ``/git/trees`` is the same one
``/contents`` reports, and a commit's ``.diff`` is computed from the two snapshots it joins.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Signature", "Commit", "TreeEntry", "FileChange", "GitRepo", "is_binary"]

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class Signature:
    name: str
    email: str
    login: str | None = None  # the Gitea account this e-mail belongs to, if any


@dataclass(frozen=True)
class TreeEntry:
    name: str
    mode: str  # "100644", "100755", "040000"
    type: str  # "blob" or "tree"
    sha: str
    size: int


@dataclass
class Commit:
    sha: str
    tree: str
    parents: list[str]
    author: Signature
    committer: Signature
    when: datetime
    message: str
    snapshot: dict[str, bytes] = field(repr=False)


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str  # "added", "modified", "deleted"
    additions: int
    deletions: int
    patch: str  # the file's section of a git diff, ending with a newline


def _git_hash(kind: str, body: bytes) -> str:
    return hashlib.sha1(b"%s %d\0" % (kind.encode(), len(body)) + body).hexdigest()


def is_binary(data: bytes) -> bool:
    if b"\0" in data[:8000]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _git_time(when: datetime) -> str:
    return f"{int(when.timestamp())} +0000"


class GitRepo:
    """Objects plus refs of one repository. Build it with :meth:`commit`; then only read."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, list[TreeEntry]] = {}
        self.commits: dict[str, Commit] = {}
        self.branches: dict[str, str] = {}
        # tag name -> (commit sha, annotated message or "", tag object sha)
        self.tags: dict[str, tuple[str, str, str]] = {}

    # -- building -------------------------------------------------------------------------

    def _store_tree(self, files: dict[str, bytes]) -> str:
        """Store the tree for ``files`` (relative paths of one directory) and return its SHA."""
        children: dict[str, dict[str, bytes]] = {}
        entries: list[TreeEntry] = []
        for path, data in files.items():
            head, sep, rest = path.partition("/")
            if sep:
                children.setdefault(head, {})[rest] = data
            else:
                sha = _git_hash("blob", data)
                self.blobs[sha] = data
                mode = "100755" if data.startswith(b"#!") else "100644"
                entries.append(TreeEntry(head, mode, "blob", sha, len(data)))
        for name, sub in children.items():
            entries.append(TreeEntry(name, "040000", "tree", self._store_tree(sub), 0))
        # git sorts entries by name, comparing directories as if they ended with "/"
        entries.sort(key=lambda e: e.name.encode() + (b"/" if e.type == "tree" else b""))
        body = b"".join(
            b"%s %s\0%s" % (e.mode.lstrip("0").encode(), e.name.encode(), bytes.fromhex(e.sha))
            for e in entries
        )
        sha = _git_hash("tree", body)
        self.trees[sha] = entries
        return sha

    def commit(
        self,
        branch: str,
        message: str,
        author: Signature,
        when: datetime,
        changes: dict[str, bytes | None],
        *,
        parent: str | None = "branch",
        committer: Signature | None = None,
    ) -> Commit:
        """Commit ``changes`` (path -> content, ``None`` deletes) on top of ``branch``'s head.

        ``parent`` may name another commit SHA to fork from, or ``None`` for a root commit.
        """
        parent_sha = self.branches.get(branch) if parent == "branch" else parent
        snapshot = dict(self.commits[parent_sha].snapshot) if parent_sha else {}
        for path, data in changes.items():
            if data is None:
                snapshot.pop(path, None)
            else:
                snapshot[path] = data
        snapshot = dict(sorted(snapshot.items()))
        tree = self._store_tree(snapshot)
        committer = committer or author
        if not message.endswith("\n"):
            message += "\n"
        body = f"tree {tree}\n"
        if parent_sha:
            body += f"parent {parent_sha}\n"
        body += f"author {author.name} <{author.email}> {_git_time(when)}\n"
        body += f"committer {committer.name} <{committer.email}> {_git_time(when)}\n\n{message}"
        sha = _git_hash("commit", body.encode())
        commit = Commit(
            sha,
            tree,
            [parent_sha] if parent_sha else [],
            author,
            committer,
            when,
            message,
            snapshot,
        )
        self.commits[sha] = commit
        self.branches[branch] = sha
        return commit

    def tag(
        self,
        name: str,
        commit_sha: str,
        message: str = "",
        tagger: Signature | None = None,
        when: datetime | None = None,
    ) -> None:
        tag_sha = commit_sha
        if message:
            tagger = tagger or self.commits[commit_sha].author
            when = when or self.commits[commit_sha].when
            body = (
                f"object {commit_sha}\ntype commit\ntag {name}\n"
                f"tagger {tagger.name} <{tagger.email}> {_git_time(when)}\n\n{message}\n"
            )
            tag_sha = _git_hash("tag", body.encode())
        self.tags[name] = (commit_sha, message, tag_sha)

    # -- reading --------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        return not self.commits

    def resolve(self, ref: str) -> str | None:
        """Branch, tag, full commit SHA or a unique prefix of at least 7 hex digits -> commit SHA."""
        if ref in self.branches:
            return self.branches[ref]
        if ref in self.tags:
            return self.tags[ref][0]
        if ref in self.commits:
            return ref
        if len(ref) >= 7 and all(c in "0123456789abcdef" for c in ref.lower()):
            hits = [sha for sha in self.commits if sha.startswith(ref.lower())]
            if len(hits) == 1:
                return hits[0]
        return None

    def log(self, sha: str) -> list[Commit]:
        """First-parent history from ``sha``, newest first."""
        out = []
        current: str | None = sha
        while current:
            commit = self.commits[current]
            out.append(commit)
            current = commit.parents[0] if commit.parents else None
        return out

    def lookup(self, commit_sha: str, path: str) -> TreeEntry | None:
        """The tree entry at ``path`` ("" = the root tree) in ``commit_sha``'s tree."""
        tree_sha = self.commits[commit_sha].tree
        if path == "":
            return TreeEntry("", "040000", "tree", tree_sha, 0)
        entry: TreeEntry | None = None
        for name in path.split("/"):
            if entry is not None and entry.type != "tree":
                return None
            current = self.trees[entry.sha if entry else tree_sha]
            entry = next((e for e in current if e.name == name), None)
            if entry is None:
                return None
        return entry

    def walk(
        self, tree_sha: str, recursive: bool, prefix: str = ""
    ) -> Iterator[tuple[str, TreeEntry]]:
        """(path, entry) pairs in git's order; recursive listings include the directories."""
        for entry in self.trees[tree_sha]:
            path = prefix + entry.name
            yield path, entry
            if recursive and entry.type == "tree":
                yield from self.walk(entry.sha, True, path + "/")

    def changes(self, old_sha: str | None, new_sha: str) -> list[FileChange]:
        """Per-file changes from ``old_sha``'s snapshot (None = nothing) to ``new_sha``'s."""
        old = self.commits[old_sha].snapshot if old_sha else {}
        new = self.commits[new_sha].snapshot
        out = []
        for path in sorted(set(old) | set(new)):
            a, b = old.get(path), new.get(path)
            if a == b:
                continue
            out.append(_file_change(path, a, b))
        return out

    def diff(self, old_sha: str | None, new_sha: str) -> str:
        return "".join(change.patch for change in self.changes(old_sha, new_sha))

    def last_commit_touching(self, ref_sha: str, path: str) -> Commit:
        """Newest commit in first-parent history that changed ``path`` (or anything under it)."""
        history = self.log(ref_sha)
        for commit in history:
            parent = commit.parents[0] if commit.parents else None
            if parent is None:
                return commit
            before = self.lookup(parent, path)
            after = self.lookup(commit.sha, path)
            if (before.sha if before else None) != (after.sha if after else None):
                return commit
        return history[-1]


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8").splitlines(keepends=True)


def _file_change(path: str, a: bytes | None, b: bytes | None) -> FileChange:
    status = "added" if a is None else "deleted" if b is None else "modified"
    a_sha = _git_hash("blob", a)[:7] if a is not None else ZERO_SHA[:7]
    b_sha = _git_hash("blob", b)[:7] if b is not None else ZERO_SHA[:7]
    mode = "100755" if (b or a or b"").startswith(b"#!") else "100644"
    head = [f"diff --git a/{path} b/{path}\n"]
    if status == "added":
        head += [f"new file mode {mode}\n", f"index {a_sha}..{b_sha}\n"]
    elif status == "deleted":
        head += [f"deleted file mode {mode}\n", f"index {a_sha}..{b_sha}\n"]
    else:
        head += [f"index {a_sha}..{b_sha} {mode}\n"]
    if is_binary(a or b"") or is_binary(b or b""):
        left = "/dev/null" if a is None else f"a/{path}"
        right = "/dev/null" if b is None else f"b/{path}"
        return FileChange(
            path, status, 0, 0, "".join(head) + f"Binary files {left} and {right} differ\n"
        )
    old_lines = _lines(a) if a is not None else []
    new_lines = _lines(b) if b is not None else []
    body = []
    additions = deletions = 0
    diff = difflib.unified_diff(
        old_lines,
        new_lines,
        fromfile="/dev/null" if a is None else f"a/{path}",
        tofile="/dev/null" if b is None else f"b/{path}",
        n=3,
    )
    for line in diff:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        if line.startswith("+") and not line.startswith("+++"):
            additions += 1
        elif line.startswith("-") and not line.startswith("---"):
            deletions += 1
        body.append(line)
    return FileChange(path, status, additions, deletions, "".join(head + body))
