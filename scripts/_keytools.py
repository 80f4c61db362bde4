"""Helpers shared by the key scripts: the metadata file and the ``.env`` file.

The scripts put the checkout's root on ``sys.path`` before importing this module, so
``aegis_tornado`` is the copy next to them. Reading ``.env`` needs python-dotenv, the server's own
reader (``make setup`` installs it; the ``make`` targets use ``.venv``); it is imported where
``.env`` is read, so ``generate_api_key.py`` still runs on a bare ``python3``.

Nothing here ever writes a key to the metadata file or prints one to stderr: the metadata record
holds the key's hint and SHA-256 digest only, and the ``.env`` rewrite touches the one
``MCP_API_KEYS`` line it is asked to change.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dotenv.parser import Binding

from aegis_tornado.auth.keys import (
    DIGEST_PREFIX,
    ConfiguredKey,
    KeyFormatError,
    key_digest,
    key_hint,
    parse_key,
)

DEFAULT_METADATA_FILE = ".key-metadata.jsonl"
METADATA_ENV_VAR = "KEY_METADATA_FILE"
KEYS_ENV_VAR = "MCP_API_KEYS"

# Exit codes shared by the scripts.
EXIT_OK = 0
EXIT_WARN = 1  # check_key_age: at least one key is due for rotation
EXIT_ERROR = 2  # a file could not be read or written, or the arguments make no sense


class ToolError(Exception):
    """A problem the operator must fix; the scripts print it and exit with EXIT_ERROR."""


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


# --------------------------------------------------------------------------- metadata file


def metadata_path(cli_value: str | None) -> tuple[Path, bool]:
    """The metadata file to use, and whether the operator named it (flag or environment)."""
    if cli_value:
        return Path(cli_value), True
    from_env = os.environ.get(METADATA_ENV_VAR, "").strip()
    if from_env:
        return Path(from_env), True
    return Path(DEFAULT_METADATA_FILE), False


def utc_timestamp(now: datetime | None = None) -> str:
    """UTC ISO 8601 with a ``Z`` suffix, to the second: ``2026-11-26T12:00:00Z``."""
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_record(key: str, name: str | None, now: datetime | None = None) -> dict:
    """The metadata kept about a key: never the key, only what identifies it."""
    return {
        "name": name,
        "created": utc_timestamp(now),
        "key_hint": key_hint(key),
        "sha256": key_digest(key),
    }


def append_record(path: Path, record: dict) -> None:
    """Append one JSON line; a new file is created with mode 0600."""
    line = (json.dumps(record) + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ToolError(f"cannot open metadata file {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if st.st_size == 0:
            # Newly created (or empty): make the mode exact whatever the umask did.
            os.fchmod(fd, 0o600)
        os.write(fd, line)
    finally:
        os.close(fd)


def parse_created(value: object) -> date:
    """A ``created`` value as a UTC date: ISO timestamp (``Z`` or offset) or plain date."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("created is missing or not a string")
    text = value.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc)
    return parsed.date()


@dataclass
class MetadataRecord:
    sha256: str
    name: str | None
    key_hint: str | None
    created: date
    line: int


def read_records(path: Path) -> list[MetadataRecord]:
    """All records of a metadata file; a malformed line is a ToolError naming its line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ToolError(f"cannot read metadata file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ToolError(f"metadata file {path} is not UTF-8 text") from exc
    records = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ToolError(f"{where}: not a JSON object ({exc.msg})") from exc
        if not isinstance(data, dict):
            raise ToolError(f"{where}: not a JSON object")
        digest = data.get("sha256")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ToolError(f"{where}: 'sha256' is not a 64-character lower-case hex digest")
        try:
            created = parse_created(data.get("created"))
        except ValueError as exc:
            raise ToolError(f"{where}: 'created' is not an ISO 8601 date or timestamp") from exc
        name = data.get("name")
        hint = data.get("key_hint")
        records.append(
            MetadataRecord(
                sha256=digest,
                name=name if isinstance(name, str) and name else None,
                key_hint=hint if isinstance(hint, str) and hint else None,
                created=created,
                line=number,
            )
        )
    return records


# --------------------------------------------------------------------------- .env file
# Read with python-dotenv, as the server reads it (aegis_tornado.settings): one reading of quotes,
# ``export`` and comments. Its parser also gives each assignment's exact original text, so a
# rewrite changes that text only and keeps everything else (comments, CRLF endings, export).


def _read_env_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except OSError as exc:
        raise ToolError(f"cannot read env file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ToolError(f"env file {path} is not UTF-8 text") from exc


def _bindings(text: str) -> list[Binding]:
    from dotenv.parser import parse_stream  # imported here: generate_api_key.py needs no .env

    return list(parse_stream(io.StringIO(text, newline="")))


def env_assignments(path: Path, name: str) -> list[tuple[int, str]]:
    """(0-based line index, value) of every assignment to ``name`` in an env file."""
    return [
        (binding.original.line - 1, binding.value or "")
        for binding in _bindings(_read_env_text(path))
        if binding.key == name
    ]


def env_value(path: Path, name: str = KEYS_ENV_VAR) -> str | None:
    """The value the env file gives ``name`` (the last assignment wins), or None."""
    from dotenv import dotenv_values

    _read_env_text(path)  # a ToolError naming the file, rather than dotenv's silence
    return dotenv_values(path, interpolate=False).get(name)


def split_keys(value: str | None) -> list[str]:
    """The non-empty, stripped entries of a comma-separated ``MCP_API_KEYS`` value."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


_LINE_ENDING = re.compile(r"(\r\n|\n|\r)\Z")


def rewrite_env_var(path: Path, name: str, value: str) -> Path:
    """Set ``name=value`` in an env file, changing only that assignment; returns the ``.bak`` path.

    The original is copied to ``<file>.bak`` first; both files end up with mode 0600. If the
    variable is not assigned yet, the line is appended. Refuses a file that assigns it more than
    once, since it cannot know which line the operator meant.
    """
    original = _read_env_text(path)
    bindings = _bindings(original)
    found = [binding for binding in bindings if binding.key == name]
    if len(found) > 1:
        numbers = ", ".join(str(binding.original.line) for binding in found)
        raise ToolError(f"{path} assigns {name} on several lines ({numbers}); keep one and retry")

    parts = []
    for binding in bindings:
        text = binding.original.string
        if binding.key == name:
            indent = text[: len(text) - len(text.lstrip())]
            export = "export " if text.lstrip().startswith("export ") else ""
            ending = _LINE_ENDING.search(text)
            text = f"{indent}{export}{name}={value}{ending.group(1) if ending else ''}"
        parts.append(text)
    if not found:
        if parts and not _LINE_ENDING.search(parts[-1]):
            parts.append("\n")
        parts.append(f"{name}={value}\n")

    backup = path.with_name(path.name + ".bak")
    _write_private(backup, original)
    _write_private(path, "".join(parts))
    return backup


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a 0600 file holding ``text``."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# --------------------------------------------------------------------------- giving a key out


def client_instructions(key: str, base_url: str = "https://mcp.example.com") -> list[str]:
    """How each kind of client presents a key: the same story as README and docs.

    ChatGPT's connector form cannot send headers, so for ChatGPT the key rides in the legacy SSE
    URL; clients that can send headers use the Authorization header on /mcp.
    """
    return [
        f"ChatGPT (connector URL; it cannot send headers): {base_url}/mcp/sse?api_key={key}",
        "  treat that URL as a secret: it holds the key. (OAuth: see docs/CHATGPT_SETUP.md)",
        f"Other MCP clients: {base_url}/mcp with the header 'Authorization: Bearer {key}'",
    ]


# --------------------------------------------------------------------------- configured keys


@dataclass
class Entry:
    """One configured key as a script sees it: its digest, and a hint when the plain key is known."""

    key: ConfiguredKey
    hint: str | None
    source: str


def parse_entry(value: str, source: str, *, name=None, created=None) -> Entry:
    """Validate a configured key; a KeyFormatError message names the source, never the key."""
    try:
        configured = parse_key(value, name=name, created=created)
    except KeyFormatError as exc:
        raise KeyFormatError(f"{source}: key {exc}") from exc
    value = value.strip()
    hint = None if value.startswith(DIGEST_PREFIX) else key_hint(value)
    return Entry(key=configured, hint=hint, source=source)
