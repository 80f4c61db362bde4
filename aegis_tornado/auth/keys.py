"""API keys: their format, how they are configured, and how a presented key is matched.

Stdlib only, so the operator scripts in ``scripts/`` can share it without installing anything.

Only SHA-256 digests are kept in memory: a key configured in plain text is hashed at load time,
and a key may also be configured directly by its digest (``sha256:<hex>``) so that a config file
need not hold a usable secret. A presented key is hashed once and compared with every configured
digest using ``hmac.compare_digest``, never stopping at the first match, so timing reveals neither
which key matched nor how much of it did.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

KEY_BYTES = 32  # 64 hex characters
MIN_KEY_LENGTH = 32
RECOMMENDED_KEY_LENGTH = 64
DIGEST_PREFIX = "sha256:"

_HEX = re.compile(r"[0-9a-fA-F]+")
_DIGEST = re.compile(r"[0-9a-f]{64}")


class KeyFormatError(ValueError):
    """A configured key is unusable. The message never contains the key itself."""


def generate_key() -> str:
    """A new 64-hex-character key from the operating system's CSPRNG."""
    return secrets.token_hex(KEY_BYTES)


def key_digest(key: str) -> str:
    """Hex SHA-256 of a key: what the server stores and what metadata records."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_hint(key: str) -> str:
    """First 8 and last 4 characters: enough to tell keys apart in logs, useless for guessing."""
    if len(key) < 16:
        return "..."
    return f"{key[:8]}...{key[-4:]}"


@dataclass(frozen=True)
class ConfiguredKey:
    """One accepted key, held only as its digest."""

    digest: str
    name: str | None = None
    created: date | None = None
    short: bool = False  # shorter than the recommended 64 characters (plain keys only)
    length: int | None = None  # characters of a plain key (not secret); None when by digest
    #: The scope fields of the key's YAML entry as configured (plain values, see
    #: ``auth.scopes``); None: the key has none.
    scope_fields: Mapping[str, Any] | None = None
    #: What this key is narrowed to (``auth.scopes.KeyScope``), built from ``scope_fields`` by
    #: ``assembly.build_keyring``; None: the global policy only.
    scope: Any = None

    @property
    def label(self) -> str:
        """How logs and warnings refer to this key without revealing it."""
        return self.name or f"sha256:{self.digest[:12]}"


def parse_key(value: str, *, name: str | None = None, created: date | None = None) -> ConfiguredKey:
    """Validate one configured key (plain hex or ``sha256:<digest>``).

    Surrounding whitespace is trimmed (it is a config-file accident, never part of a key);
    everything else is compared exactly, case included.
    """
    value = value.strip()
    if not value:
        raise KeyFormatError("is empty")
    if value.startswith(DIGEST_PREFIX):
        digest = value[len(DIGEST_PREFIX) :]
        if not _DIGEST.fullmatch(digest):
            raise KeyFormatError(
                "has a sha256: prefix but not 64 lower-case hex characters after it"
            )
        return ConfiguredKey(digest=digest, name=name, created=created)
    if not _HEX.fullmatch(value):
        raise KeyFormatError(
            f"is not hexadecimal ({len(value)} characters; keys contain only 0-9 and a-f)"
        )
    if len(value) < MIN_KEY_LENGTH:
        raise KeyFormatError(
            f"is too short ({len(value)} characters; at least {MIN_KEY_LENGTH} required, "
            f"{RECOMMENDED_KEY_LENGTH} recommended)"
        )
    return ConfiguredKey(
        digest=key_digest(value),
        name=name,
        created=created,
        short=len(value) < RECOMMENDED_KEY_LENGTH,
        length=len(value),
    )


class KeyRing:
    """The set of accepted keys."""

    def __init__(self, keys: list[ConfiguredKey] | tuple[ConfiguredKey, ...] = ()):
        unique: dict[str, ConfiguredKey] = {}
        for key in keys:
            if key.scope_fields is not None and key.scope is None:
                # Fail closed: a scoped key whose scope was never built would reach everything.
                raise ValueError(
                    f"key {key.label}: its scope is not built (assembly.build_keyring)"
                )
            unique.setdefault(key.digest, key)
        self._keys = tuple(unique.values())
        self._digests = tuple(bytes.fromhex(k.digest) for k in self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def match(self, presented: str) -> ConfiguredKey | None:
        """The configured key equal to ``presented``, compared in constant time."""
        candidate = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = None
        for key, digest in zip(self._keys, self._digests, strict=False):
            # No early exit: every digest is compared whatever the outcome.
            if hmac.compare_digest(candidate, digest):
                found = key
        return found
