#!/usr/bin/env python3
"""Report the age of AegisGitea MCP API keys and flag those due for rotation (``make check-key-age``).

Where ages come from: the metadata file written by ``generate_api_key.py --save-metadata`` /
``rotate_key.py --save-metadata`` (matched by SHA-256 digest), and ``created`` dates in a YAML
config's ``api_keys`` (these win over metadata).

Which keys are checked: with ``--env-file`` and/or ``--config``, the keys those files configure
(env ``MCP_API_KEYS`` plus config ``api_keys``), so that retired keys still in the metadata file
are not reported; a configured key with no known creation date is reported as "age unknown".
With neither, every key in the metadata file is checked.

Exit codes:
  0  every checked key is within --max-age-days (keys of unknown age only warn, unless --strict),
     or there was nothing to check (said plainly);
  1  at least one key is older than --max-age-days (or, with --strict, of unknown age);
  2  a named file is missing, unreadable or malformed, or a configured key entry is invalid
     (the report is still printed for what could be checked).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent), str(_HERE)]  # the checkout's package first, then _keytools

from _keytools import (  # noqa: E402
    EXIT_ERROR,
    EXIT_OK,
    EXIT_WARN,
    KEYS_ENV_VAR,
    METADATA_ENV_VAR,
    Entry,
    ToolError,
    env_value,
    fail,
    metadata_path,
    parse_entry,
    read_records,
    split_keys,
)

from aegis_tornado.auth.keys import KeyFormatError  # noqa: E402
from aegis_tornado.settings import key_entry  # noqa: E402

DEFAULT_MAX_AGE_DAYS = 90


@dataclass
class Checked:
    """One key as reported: how to name it, and when it was issued if anyone knows."""

    digest: str
    name: str | None
    hint: str | None
    created: date | None

    @property
    def label(self) -> str:
        hint = self.hint or f"sha256:{self.digest[:12]}..."
        return f"{self.name} ({hint})" if self.name else hint


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Report API key ages and flag keys due for rotation.",
        epilog="Exit codes: 0 all keys within the limit (or nothing to check), 1 rotation due, 2 file or entry problem.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--metadata-file",
        metavar="PATH",
        help=f"key metadata (default: ${METADATA_ENV_VAR}, else ./.key-metadata.jsonl; a missing default file is no error)",
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="env file whose MCP_API_KEYS says which keys are configured",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML config whose api_keys (with optional created dates) are configured",
    )
    parser.add_argument(
        "--max-age-days",
        type=int,
        default=DEFAULT_MAX_AGE_DAYS,
        metavar="N",
        help=f"keys older than N days are due for rotation (default: {DEFAULT_MAX_AGE_DAYS})",
    )
    parser.add_argument(
        "--strict", action="store_true", help="also exit 1 when a configured key's age is unknown"
    )
    return parser


def load_config_entries(path: Path, problems: list[str]) -> list[Entry]:
    """The ``api_keys`` of a YAML config; invalid entries go to ``problems``."""
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml is a dependency of the package
        raise ToolError("--config needs PyYAML (pip install pyyaml)") from exc
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ToolError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ToolError(f"config {path} is not valid YAML: {exc}") from exc
    if data is None:
        return []
    if not isinstance(data, dict):
        raise ToolError(f"config {path} is not a YAML mapping")
    items = data.get("api_keys") or []
    if not isinstance(items, list):
        raise ToolError(f"config {path}: api_keys must be a list")

    entries = []
    for position, item in enumerate(items, start=1):
        source = f"{path} api_keys[{position}]"
        try:  # the server's own reading of an entry (aegis_tornado.settings)
            value, name, created = key_entry(item)
        except ValueError as exc:
            problems.append(f"{source}: {exc}")
            continue
        try:
            entries.append(parse_entry(value, source, name=name, created=created))
        except KeyFormatError as exc:
            problems.append(str(exc))
    return entries


def load_env_entries(path: Path, problems: list[str]) -> list[Entry]:
    if not path.is_file():
        raise ToolError(f"env file {path} not found")
    entries = []
    for position, value in enumerate(split_keys(env_value(path)), start=1):
        try:
            entries.append(parse_entry(value, f"{path} {KEYS_ENV_VAR} entry {position}"))
        except KeyFormatError as exc:
            problems.append(str(exc))
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_age_days < 0:
        parser.error("--max-age-days must be 0 or more")

    meta_path, meta_named = metadata_path(args.metadata_file)
    problems: list[str] = []
    try:
        if meta_path.exists() or meta_named:
            records = read_records(meta_path)
        else:
            records = []
        configured: list[Entry] | None = None
        if args.env_file or args.config:
            configured = []
            if args.config:
                configured += load_config_entries(Path(args.config), problems)
            if args.env_file:
                configured += load_env_entries(Path(args.env_file), problems)
    except ToolError as exc:
        return fail(str(exc))

    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)

    # What metadata knows about each digest: the earliest date, and the first name and hint.
    known: dict[str, Checked] = {}
    for record in records:
        seen = known.get(record.sha256)
        if seen is None:
            known[record.sha256] = Checked(
                record.sha256, record.name, record.key_hint, record.created
            )
        else:
            if seen.created is None or record.created < seen.created:
                seen.created = record.created
            seen.name = seen.name or record.name
            seen.hint = seen.hint or record.key_hint

    sources = []
    if configured is None:
        checked = list(known.values())
        sources.append(f"all keys in {meta_path}")
        retired = 0
    else:
        by_digest: dict[str, Checked] = {}
        for entry in configured:  # config first: its created dates and names win
            meta = known.get(entry.key.digest)
            item = by_digest.setdefault(
                entry.key.digest, Checked(entry.key.digest, None, None, None)
            )
            item.name = item.name or entry.key.name or (meta.name if meta else None)
            item.hint = item.hint or entry.hint or (meta.hint if meta else None)
            item.created = item.created or entry.key.created or (meta.created if meta else None)
        checked = list(by_digest.values())
        sources.append(
            "keys configured in " + " and ".join(p for p in (args.config, args.env_file) if p)
        )
        retired = len(set(known) - set(by_digest))

    if not checked:
        if configured is None:
            where = (
                f"{meta_path} has no records"
                if meta_path.exists()
                else f"no metadata file ({meta_path})"
            )
            print(f"Nothing to check: {where}.")
            print(
                "Save metadata when issuing keys (generate_api_key.py --save-metadata), or pass --env-file/--config."
            )
        else:
            print(
                f"Nothing to check: no keys configured in {' or '.join(p for p in (args.config, args.env_file) if p)}."
            )
            if retired:
                print(f"({retired} metadata record(s) ignored: those keys are not configured.)")
        return EXIT_ERROR if problems else EXIT_OK

    today = datetime.now(timezone.utc).date()
    limit = args.max_age_days
    print(f"API key age check: {sources[0]}; limit {limit} days; today {today.isoformat()} (UTC)")
    print()
    due = unknown = ok = 0
    width = max(len(item.label) for item in checked)
    for item in sorted(checked, key=lambda c: (c.created is None, c.created or today, c.label)):
        if item.created is None:
            unknown += 1
            print(
                f"  UNKNOWN  {item.label:<{width}}  age unknown: no metadata record or created date"
            )
            continue
        age = (today - item.created).days
        when = f"created {item.created.isoformat()}"
        if age < 0:
            ok += 1
            print(
                f"  OK       {item.label:<{width}}  {when}, in the future: check the record or the clock"
            )
        elif age > limit:
            due += 1
            print(
                f"  ROTATE   {item.label:<{width}}  {age} days old ({when}), {age - limit} day(s) over the limit"
            )
        else:
            ok += 1
            print(
                f"  OK       {item.label:<{width}}  {age} days old ({when}), rotate within {limit - age} day(s)"
            )
    print()
    if retired:
        print(f"{retired} metadata record(s) not checked: those keys are not configured (retired).")
    print(f"Summary: {ok} ok, {due} due for rotation, {unknown} of unknown age.")
    if due:
        print(
            f"WARNING: {due} key(s) older than {limit} days: rotate them (make rotate-key, see docs/KEY_ROTATION.md)."
        )
    if unknown:
        print(
            f"WARNING: {unknown} key(s) of unknown age: add a 'created' date in the config, "
            "or rotate them with --save-metadata so they are tracked."
        )

    if problems:
        return EXIT_ERROR
    if due or (args.strict and unknown):
        return EXIT_WARN
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
