#!/usr/bin/env python3
"""Check the audit log's hash chain (``make verify-audit``).

Usage: scripts/verify_audit.py FILE [FILE...]

Give the files oldest first, e.g. ``audit.log.2.gz audit.log.1 audit.log``: the first line of
each file must lead on from the last line of the file before it. Reports the first line where
the chain breaks (an edited, deleted, inserted or moved line, a file cut short) as
``FILE:LINE: reason``.

Exit codes: 0 the chain holds; 1 it breaks; 2 bad arguments or a file could not be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's package

from aegis_tornado.audit_chain import verify  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check the hash chain of AegisGitea MCP audit log files (oldest first)."
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    args = parser.parse_args(argv)
    try:
        verdict = verify(args.files)
    except OSError as error:
        where = f" {error.filename}" if error.filename else ""
        print(f"error: cannot read{where}: {error.strerror or error}", file=sys.stderr)
        return 2
    except EOFError:  # a .gz file cut short: the file itself is damaged
        print("error: a compressed file ends early (cut short)", file=sys.stderr)
        return 2
    if verdict.broken is not None:
        print(f"BROKEN {verdict.broken}")
        print(f"{verdict.lines} line(s) before it are intact.")
        return 1
    if verdict.head_seq is None:
        print(f"BROKEN no chained line in {len(args.files)} file(s): nothing to verify")
        return 1
    print(f"OK {verdict.lines} line(s) in {verdict.files} file(s) form one chain.")
    if verdict.unchained:
        print(f"   The first {verdict.unchained} line(s) predate the chain and are not covered.")
    print(f"   Last line: seq {verdict.head_seq}, sha256 {verdict.head_digest}")
    print("   (keep this digest elsewhere: it proves every line up to it later on)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
