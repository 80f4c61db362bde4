#!/usr/bin/env python3
"""Generate a new API key for AegisGitea MCP.

Prints the key once, the ``.env`` line that enables it, and its ``sha256:`` form for configs that
should hold no usable secret. With ``--save-metadata`` it appends a tracking record (name,
creation time, hint, digest; never the key) to the metadata file used by ``check_key_age.py``.

Runs from a checkout with a plain ``python3 scripts/generate_api_key.py``; nothing to install.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent), str(_HERE)]  # the checkout's package first, then _keytools

from _keytools import (  # noqa: E402
    EXIT_OK,
    METADATA_ENV_VAR,
    ToolError,
    append_record,
    client_instructions,
    fail,
    make_record,
    metadata_path,
)

from aegis_tornado.auth.keys import DIGEST_PREFIX, generate_key, key_digest, key_hint  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate a 64-character API key for AegisGitea MCP.",
        epilog=(
            "The key is shown once and stored nowhere by this script. "
            f"Metadata file: --metadata-file, else ${METADATA_ENV_VAR}, else ./.key-metadata.jsonl."
        ),
    )
    parser.add_argument(
        "--name", help="a label for the key, e.g. chatgpt-workspace (kept in metadata)"
    )
    parser.add_argument(
        "--save-metadata",
        action="store_true",
        help="append name, creation time, hint and SHA-256 (never the key) to the metadata file",
    )
    parser.add_argument("--metadata-file", metavar="PATH", help="where --save-metadata appends")
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="print only the key (for piping)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    key = generate_key()
    now = datetime.now(timezone.utc)
    digest = key_digest(key)

    saved_to = None
    if args.save_metadata:
        path, _ = metadata_path(args.metadata_file)
        try:
            append_record(path, make_record(key, args.name, now))
        except ToolError as exc:
            # The key was never shown, so nothing is lost: the operator fixes the path and reruns.
            return fail(f"{exc} (no key was issued)")
        saved_to = path

    if args.quiet:
        print(key)
        if saved_to:
            print(f"metadata saved to {saved_to}", file=sys.stderr)
        return EXIT_OK

    label = f" '{args.name}'" if args.name else ""
    print(f"New API key{label} generated.")
    print()
    print("API KEY (shown only this once: save it now, e.g. in your password manager):")
    print()
    print(f"    {key}")
    print()
    print(f"Hint (how the audit log refers to it): {key_hint(key)}")
    print()
    print("Add it to .env (to accept several keys, separate them with commas):")
    print()
    print(f"    MCP_API_KEYS={key}")
    print()
    print("Or configure it by digest, so the config holds nothing a client could present:")
    print()
    print(f"    MCP_API_KEYS={DIGEST_PREFIX}{digest}")
    print()
    print("    # or in the YAML config (aegis-mcp --config FILE):")
    print("    api_keys:")
    print(f'      - sha256: "{digest}"')
    if args.name:
        print(f"        name: {json.dumps(args.name)}")  # JSON strings are valid YAML
    print(f"        created: {now.date().isoformat()}")
    print()
    if saved_to:
        print(f"Metadata (name, date, hint, digest; not the key) appended to {saved_to}.")
    else:
        print(
            "Metadata not saved: rerun with --save-metadata to let check_key_age.py track this key."
        )
    print()
    print("Next steps:")
    print("  1. Put the key (or its sha256: form) in MCP_API_KEYS and restart the server.")
    print("  2. Test: curl -H 'Authorization: Bearer <key>' http://127.0.0.1:8080/mcp/tools")
    print("  3. Give the key to the client:")
    for line in client_instructions("<key>"):
        print(f"     {line}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
