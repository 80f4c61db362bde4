"""Unified diffs handed to a model: sensitive files cut out."""

from __future__ import annotations

import re

from .policy import PathPolicy

_FILE_HEADER = re.compile(r"^diff --git a/(?P<a>.*?) b/(?P<b>.*)$", re.M)


def filter_diff(diff: str, paths: PathPolicy) -> tuple[str, list[str]]:
    """The diff without the sections of sensitive files (a one-line note instead), and their
    paths. A diff of a key file is the key file."""
    starts = [m.start() for m in _FILE_HEADER.finditer(diff)]
    if not starts:
        return diff, []
    kept = [diff[: starts[0]]]
    omitted: list[str] = []
    for start, end in zip(starts, starts[1:] + [len(diff)]):
        section = diff[start:end]
        header = _FILE_HEADER.match(section)
        names = {header.group("a"), header.group("b")} if header else set()
        if any(paths.is_sensitive(name) for name in names):
            name = header.group("b") if header else "?"
            omitted.append(name)
            kept.append(f"diff --git a/{name} b/{name}\n[diff omitted: sensitive file, blocked by "
                        "policy]\n")
        else:
            kept.append(section)
    return "".join(kept), omitted

