"""The audit chain: every audit line names the line before it, so tampering shows.

Each line of the audit file is a JSON object whose last two fields are

- ``seq``: the line's number in its file, 1 on the first line, one more on each line after;
- ``prev``: the SHA-256 (hex) of the line before it, as written (its UTF-8 bytes without the
  newline). The first line of a file names the last line of the file before it (the file
  logrotate moved away, or the file as it was when the server restarted), or ``GENESIS``
  when the chain starts with no earlier line.

An edited line no longer hashes to the next line's ``prev``; a deleted, inserted or moved line
breaks the ``seq`` run; a file cut short ends in an incomplete line or no longer leads to the
next file's first line. ``verify`` finds the first such break (``scripts/verify_audit.py``).

The chain is unkeyed: whoever can rewrite the file can rewrite every line after an edit too.
It proves the file is as written only up to a line whose digest was kept elsewhere (every
audit line also goes to stdout, i.e. to the log collector). See docs/SECURITY.md.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

GENESIS = "0" * 64
#: How far back from the end of a file ``last_line`` looks for the start of the last line.
_TAIL_LIMIT = 1 << 20
_COMPRESSED = (".gz", ".xz", ".bz2", ".zst", ".lz4")


def line_digest(line: str | bytes) -> str:
    """The digest a following line carries as ``prev``."""
    data = line.encode("utf-8") if isinstance(line, str) else line
    return hashlib.sha256(data).hexdigest()


@dataclass
class ChainState:
    """Where the chain stands: the ``seq`` and ``prev`` of the next line to be written."""

    seq: int = 1
    prev: str = GENESIS

    def append(self, rendered: str) -> str:
        """``rendered`` (a JSON object, as the log pipeline renders it) with its chain fields."""
        fields = f'"seq": {self.seq}, "prev": "{self.prev}"}}'
        line = f"{rendered[:-1]}, {fields}" if rendered != "{}" else "{" + fields
        self.seq += 1
        self.prev = line_digest(line)
        return line


@dataclass
class Tail:
    """The end of an existing file: its last line, and whether a newline closes it."""

    last_line: str | None = None
    complete: bool = True


def read_tail(path: str) -> Tail:
    """The last line of a regular file (a device such as /dev/full has none)."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
                return Tail()
            size = info.st_size
            block = b""
            start = size
            while start > 0 and size - start < _TAIL_LIMIT:
                step = min(8192, start)
                start -= step
                handle.seek(start)
                block = handle.read(step) + block
                if block.rstrip(b"\n").find(b"\n") >= 0:
                    break
    except FileNotFoundError:
        return Tail()
    complete = block.endswith(b"\n")
    body = block[:-1] if complete else block
    last = body.rsplit(b"\n", 1)[-1]
    return Tail(last.decode("utf-8", errors="replace"), complete)


def seq_of(line: str) -> int | None:
    try:
        value = json.loads(line).get("seq")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def continue_after(tail: Tail, prev: str) -> ChainState:
    """The chain state for appending to a file that ends in ``tail``; ``prev`` anchors the
    first line of a file that is still empty."""
    if tail.last_line is None:
        return ChainState(1, prev)
    seq = seq_of(tail.last_line) if tail.complete else None
    return ChainState((seq or 0) + 1, line_digest(tail.last_line))


def predecessor(path: str) -> str | None:
    """The newest rotated copy of ``path`` (``audit.log.1``, ``audit.log-20261204``), whose last
    line the first line of a new file anchors to when the server starts after a rotation."""
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    candidates = []
    for name in names:
        if name == base or not name.startswith((base + ".", base + "-")):
            continue
        if name.endswith(_COMPRESSED):
            continue
        full = os.path.join(directory, name)
        try:
            info = os.stat(full)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_size:
            candidates.append((info.st_mtime, full))
    return max(candidates)[1] if candidates else None


def state_at_start(path: str) -> tuple[ChainState, bool]:
    """Where the chain continues when the server opens ``path`` at start-up, and whether the
    file ends in an incomplete line (the next write must start a new line)."""
    tail = read_tail(path)
    anchor = GENESIS
    if tail.last_line is None:
        older = predecessor(path)
        if older is not None:
            previous = read_tail(older)
            if previous.last_line is not None:
                anchor = line_digest(previous.last_line)
    return continue_after(tail, anchor), not tail.complete


# -- verification ---------------------------------------------------------------------------


@dataclass
class Break:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class Verdict:
    lines: int = 0
    files: int = 0
    unchained: int = 0  # lines written before the chain existed, at the head of the first file
    head_seq: int | None = None
    head_digest: str | None = None
    broken: Break | None = None


def _open_lines(path: str) -> Iterator[bytes]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        yield from handle


def verify(paths: Iterable[str]) -> Verdict:
    """Walk the files in order (oldest first) and stop at the first break.

    Raises OSError when a file cannot be read."""
    verdict = Verdict()
    last_digest: str | None = None  # the line before the one being checked, in any file
    last_where: tuple[str, int] | None = None
    chain_started = False
    for path in paths:
        verdict.files += 1
        expected_seq: int | None = None
        number = 0
        for raw in _open_lines(path):
            number += 1
            broken = _check_line(path, number, raw, expected_seq, last_digest, last_where)
            if broken == "unchained":
                if chain_started:
                    verdict.broken = Break(
                        path,
                        number,
                        "the line has no chain fields (seq, prev): it was inserted or edited",
                    )
                    return verdict
                verdict.unchained += 1
            elif isinstance(broken, Break):
                verdict.broken = broken
                return verdict
            elif isinstance(broken, int):
                chain_started = True
                expected_seq = broken + 1
                verdict.head_seq = broken
            text = raw[:-1]
            last_digest = line_digest(text)
            last_where = (path, number)
            verdict.lines += 1
        if number == 0 and chain_started:
            verdict.broken = Break(path, 1, "the file is empty: its lines were removed")
            return verdict
    verdict.head_digest = last_digest
    return verdict


def _check_line(
    path: str,
    number: int,
    raw: bytes,
    expected_seq: int | None,
    last_digest: str | None,
    last_where: tuple[str, int] | None,
) -> int | str | Break:
    """The line's ``seq`` when it follows on, "unchained" for a line without chain fields,
    or the Break it makes."""
    if not raw.endswith(b"\n"):
        return Break(path, number, "the line is incomplete: the file was cut short (truncated)")
    try:
        record = json.loads(raw)
    except ValueError:
        return Break(path, number, "the line is not JSON: it was edited or damaged")
    if not isinstance(record, dict):
        return Break(path, number, "the line is not a JSON object: it was edited")
    seq, prev = record.get("seq"), record.get("prev")
    if seq is None and prev is None:
        return "unchained"
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 or not isinstance(prev, str):
        return Break(
            path, number, "the chain fields (seq, prev) are malformed: the line was edited"
        )
    if expected_seq is None:  # the first chained line of this file
        if seq != 1:
            return Break(
                path,
                number,
                f"the file's first line has seq {seq}, not 1: "
                f"{seq - 1} line(s) were removed from the head of the file",
            )
        if last_digest is not None and prev != last_digest:
            assert last_where is not None
            where, line = last_where
            if where == path:
                return Break(path, line, "the line was changed after it was written")
            return Break(
                path,
                number,
                f"the file does not follow on from {where} (line {line}): lines were removed "
                f"from the end of {where}, its last line was changed, or the files are given "
                "out of order (give them oldest first)",
            )
        return seq
    if seq != expected_seq:
        if seq > expected_seq:
            reason = (
                f"seq {seq} where {expected_seq} was expected: "
                f"{seq - expected_seq} line(s) before this one were deleted or moved"
            )
        else:
            reason = (
                f"seq {seq} where {expected_seq} was expected: lines were reordered or repeated"
            )
        return Break(path, number, reason)
    if prev != last_digest:
        return Break(path, number - 1, "the line was changed after it was written")
    return seq
