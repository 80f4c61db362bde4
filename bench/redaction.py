"""Micro-benchmark of output sanitising: microseconds per KB of realistic text.

    .venv/bin/python bench/redaction.py                      # this tree's sanitiser
    .venv/bin/python bench/redaction.py --module OLD.py      # another sanitize.py, by path
    .venv/bin/python bench/redaction.py --engine substring   # the stdlib keyword pre-filter

Texts: the product's own source files (code), the lockfiles, CI log, git log and HTML with
inline images of the secrets corpus' bait (tests/tools/secrets_corpus/bait), and the docs
(prose). Each category is measured as its files would be returned by a tool: one call per
file. The figure is the lowest thread CPU time over ``--reps`` repetitions for the category,
divided by its size, for ``redact_secrets`` and for ``clean_text`` (invisible
characters + secrets). A few seconds in all; not part of ``make bench`` or CI.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus() -> dict[str, list[str]]:
    bait = ROOT / "tests" / "tools" / "secrets_corpus" / "bait"
    lockfiles = ("package-lock.json", "yarn.lock", "poetry.lock", "go.sum", "Cargo.lock")
    return {
        # The product's source, without the rule tables (they name every keyword there is).
        "code": [
            p.read_text()
            for p in sorted((ROOT / "aegis_tornado").rglob("*.py"))
            if p.name not in ("secrets.py", "secret_formats.py", "sanitize.py")
        ],
        "lockfiles": [(bait / name).read_text() for name in lockfiles],
        "ci-logs": [(bait / name).read_text() for name in ("ci-build.log", "git-log.txt")],
        "html+base64": [(bait / "images.html").read_text()],
        # The docs, without SECURITY.md: its rule table names every keyword there is.
        "prose": [
            p.read_text() for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "SECURITY.md"
        ],
        "tool-results": tool_result_strings(),
    }


def tool_result_strings() -> list[str]:
    """Every string of list_issues/get_issue-shaped results over the demo dataset's issues and
    pull requests, as ToolEnv.finish sees them: titles, bodies, comments, logins, labels,
    states, dates, URLs, each cleaned on its own (the short ASCII ones are skipped there)."""
    from aegis_tornado.gitea_double.dataset import build_dataset

    strings: list[str] = []
    for repo in build_dataset("bench-token", {}).repos:
        for issue in repo.issues:
            url = f"https://git.example.com/{repo.owner}/{repo.name}/issues/{issue.number}"
            strings += [issue.title, issue.body, issue.user, issue.state, url, repo.full_name]
            strings += [label.name for label in issue.labels]
            strings += [issue.created.isoformat(), *(c.body for c in issue.comments)]
    return [s for s in strings if len(s) >= 16 or not (s.isascii() and s.isprintable())]


def load(path: str | None) -> ModuleType:
    if path is None:
        from aegis_tornado.tools import sanitize

        return sanitize
    spec = importlib.util.spec_from_file_location("sanitize_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def per_kb(function: Callable[[str], object], texts: list[str], reps: int) -> float:
    size_kb = sum(len(t.encode("utf-8")) for t in texts) / 1024
    for text in texts:  # warm caches and lazy compilation
        function(text)
    timings = []
    for _ in range(reps):
        started = time.thread_time()
        for text in texts:
            function(text)
        timings.append(time.thread_time() - started)
    # CPU time of this thread, the best of the repetitions: the machine is shared, and other
    # processes' load only ever adds to a repetition.
    return min(timings) / size_kb * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", help="path of a sanitize.py to measure instead")
    parser.add_argument("--engine", choices=("hyperscan", "substring"), default=None)
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    sanitize = load(args.module)
    if args.engine is not None:
        from aegis_tornado.tools import secrets

        engine = args.engine

        def redact(text: str) -> object:
            return secrets.redact_secrets(text, engine)

        secrets.keyword_engine(engine)  # fail now if it cannot load
    else:
        redact = sanitize.redact_secrets
    texts = corpus()
    print(f"{'category':<12} {'KB':>7} {'redact µs/KB':>13} {'clean µs/KB':>12}")
    for name, group in texts.items():
        size = sum(len(t.encode("utf-8")) for t in group) / 1024
        redact_cost = per_kb(redact, group, args.reps)
        clean_cost = per_kb(sanitize.clean_text, group, args.reps)
        print(f"{name:<12} {size:7.1f} {redact_cost:13.1f} {clean_cost:12.1f}")


if __name__ == "__main__":
    main()
