#!/usr/bin/env python3
"""Guided API key rotation for AegisGitea MCP (``make rotate-key``).

Generates the new key, reads the keys currently in ``MCP_API_KEYS`` from the env file, and prints
the grace-period line that accepts old and new keys together, followed by the steps to move the
client over and retire the old key. The env file is changed only with ``--apply``, which rewrites
the ``MCP_API_KEYS`` line alone and keeps the previous file as ``<env-file>.bak`` (mode 0600).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent), str(_HERE)]  # the checkout's package first, then _keytools

from _keytools import (  # noqa: E402
    EXIT_OK,
    KEYS_ENV_VAR,
    ToolError,
    append_record,
    client_instructions,
    env_assignments,
    fail,
    make_record,
    metadata_path,
    parse_entry,
    read_records,
    rewrite_env_var,
    split_keys,
)

from aegis_tornado.auth.keys import KeyFormatError, generate_key, key_hint  # noqa: E402

CONTAINER = "aegis-gitea-mcp"
AUDIT_LOG = "/var/log/aegis-mcp/audit.log"
RELOAD = "docker compose up -d --force-recreate aegis-mcp"


def build_parser() -> argparse.ArgumentParser:
    port = os.environ.get("MCP_PORT", "8080")
    parser = argparse.ArgumentParser(
        description="Rotate the AegisGitea MCP API key with a grace period (old and new keys both valid).",
    )
    parser.add_argument(
        "--env-file",
        default=".env",
        metavar="PATH",
        help="env file holding MCP_API_KEYS (default: .env)",
    )
    parser.add_argument("--name", help="label for the new key (kept in metadata)")
    parser.add_argument(
        "--save-metadata",
        action="store_true",
        help="append the new key's metadata record (never the key)",
    )
    parser.add_argument(
        "--metadata-file",
        metavar="PATH",
        help="metadata file (default: $KEY_METADATA_FILE or ./.key-metadata.jsonl)",
    )
    parser.add_argument(
        "--apply",
        action="store_true",
        help="write the grace-period MCP_API_KEYS line into the env file (only that line; a .bak copy is kept)",
    )
    parser.add_argument(
        "--url",
        default=f"http://127.0.0.1:{port}",
        help="server base URL for the verification commands (default: http://127.0.0.1:$MCP_PORT)",
    )
    return parser


def describe_current(entries, records) -> list[str]:
    """One human line per current key: its name and hint, never the key."""
    lines = []
    for entry in entries:
        record = records.get(entry.key.digest)
        hint = entry.hint or (record.key_hint if record else None)
        hint = hint or f"sha256:{entry.key.digest[:12]}... (hint unknown)"
        name = record.name if record else None
        lines.append(f"{name} ({hint})" if name else hint)
    return lines


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env_file = Path(args.env_file)
    meta_path, _ = metadata_path(args.metadata_file)

    # Read everything that can fail before a key is generated and shown.
    current_value = None
    if env_file.exists():
        try:
            assignments = env_assignments(env_file, KEYS_ENV_VAR)
        except ToolError as exc:
            return fail(str(exc))
        if args.apply and len(assignments) > 1:
            lines = ", ".join(str(index + 1) for index, _ in assignments)
            return fail(
                f"{env_file} assigns {KEYS_ENV_VAR} on several lines ({lines}); keep one and retry"
            )
        current_value = assignments[-1][1] if assignments else None
    elif args.apply:
        return fail(
            f"{env_file} does not exist; create it first (it also holds GITEA_URL and GITEA_TOKEN), then rerun with --apply"
        )

    current = split_keys(current_value)
    entries = []
    for position, value in enumerate(current, start=1):
        try:
            entries.append(parse_entry(value, f"{env_file} {KEYS_ENV_VAR} entry {position}"))
        except KeyFormatError as exc:
            print(
                f"warning: {exc}; the server cannot use this entry: fix or remove it",
                file=sys.stderr,
            )

    records = {}
    if meta_path.exists():
        try:
            records = {record.sha256: record for record in read_records(meta_path)}
        except ToolError as exc:
            print(f"warning: {exc}; old key names are not shown", file=sys.stderr)

    new_key = generate_key()
    now = datetime.now(timezone.utc)
    if args.save_metadata:
        try:
            append_record(meta_path, make_record(new_key, args.name, now))
        except ToolError as exc:
            return fail(f"{exc} (no key was issued)")

    grace_value = ",".join(current + [new_key])
    backup = None
    if args.apply:
        try:
            backup = rewrite_env_var(env_file, KEYS_ENV_VAR, grace_value)
        except (ToolError, OSError) as exc:
            note = (
                f"; the metadata record for {key_hint(new_key)} is unused"
                if args.save_metadata
                else ""
            )
            return fail(f"could not update {env_file}: {exc} (no key was issued{note})")

    grace_line = f"{KEYS_ENV_VAR}={grace_value}"
    final_line = f"{KEYS_ENV_VAR}={new_key}"
    new_hint = key_hint(new_key)
    old_labels = describe_current(entries, records)

    print("=== AegisGitea MCP key rotation ===")
    print()
    print("NEW API KEY (shown only this once: save it now, e.g. in your password manager):")
    print()
    print(f"    {new_key}")
    print()
    print(f"New key hint: {new_hint}")
    if args.save_metadata:
        print(f"Metadata (not the key) appended to {meta_path}.")
    print()

    if current_value is None:
        where = "not found" if not env_file.exists() else f"has no {KEYS_ENV_VAR} line"
        print(f"{env_file} {where}: there is no old key to keep, so no grace period is needed.")
    else:
        print(f"Keys currently in {env_file} ({len(current)}):")
        for label in old_labels:
            print(f"  - {label}")
    print()

    bearer = f"Authorization: Bearer {new_key}"
    tools_url = args.url.rstrip("/") + "/mcp/tools"
    old_hints = [
        entry.hint or (records[entry.key.digest].key_hint if entry.key.digest in records else None)
        for entry in entries
    ]
    old_hints = [hint for hint in old_hints if hint]
    steps = []
    what = (
        "old and new keys both accepted during the grace period" if current else "the new key only"
    )
    if backup:
        steps.append(
            [
                f"DONE: {env_file} updated ({what}); previous file kept as {backup}:",
                "",
                f"  {grace_line}",
                "",
            ]
        )
    else:
        steps.append([f"Set this line in {env_file} ({what}):", "", f"  {grace_line}", ""])
    steps.append(
        [
            f"Recreate the container so it reads the env file again:  {RELOAD}",
            "('docker compose restart' is not enough: it keeps the environment the container was created with)",
        ]
    )
    steps.append(
        [
            f"Verify the new key:  curl -fsS -H {shlex.quote(bearer)} {shlex.quote(tools_url)}",
            f"and that a request without a key is refused:  curl -s -o /dev/null -w '%{{http_code}}\\n' {shlex.quote(tools_url)}  (expect 401)",
        ]
    )
    steps.append(
        [
            "Move the client to the new key, and check that it still works:",
            *client_instructions("<new key>"),
            "For ChatGPT it is the connector URL that changes: edit the connector (or create it again)",
            "with the new URL; nothing in its authentication settings holds the key.",
        ]
    )
    if entries:
        check = [
            "Before retiring the old key, confirm in the audit log that the client has moved: the old key's",
            f"last use should predate the switch, and new requests should carry the new hint {new_hint}:",
        ]
        for hint in old_hints:
            pattern = f'"key_hint": "{hint}"'
            check.append(
                f"  docker exec {CONTAINER} grep -F {shlex.quote(pattern)} {AUDIT_LOG} | tail -n 1"
            )
        if len(old_hints) < len(entries):
            check.append(
                "(a key configured by its sha256: digest has no known hint unless its metadata was saved)"
            )
        steps.append(check)
    if not current:
        return print_steps(steps)
    retire = [f"Retire the old key: set this line in {env_file}"]
    if len(current) > 1:
        retire.append(
            f"(it drops all {len(current)} current keys; if some belong to other clients, keep those)"
        )
    retire += ["", f"  {final_line}", ""]
    steps.append(retire)
    steps.append(
        [
            f"Recreate the container again:  {RELOAD}",
            "From now on a client still using the old key is refused: watch for invalid_api_key denials:",
            f'  docker exec {CONTAINER} grep -F \'"reason": "invalid_api_key"\' {AUDIT_LOG} | tail -n 5',
        ]
    )

    return print_steps(steps)


def print_steps(steps: list[list[str]]) -> int:
    print("Steps:")
    for number, lines in enumerate(steps, start=1):
        print(f"  {number}. {lines[0]}")
        for line in lines[1:]:
            print(f"     {line}" if line else "")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
