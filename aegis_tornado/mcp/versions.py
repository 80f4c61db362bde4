"""Protocol versions this server speaks, and what each one allows on the wire.

Two eras share ``/mcp``. The handshake era (2024-11-05 … 2025-11-25) negotiates a version with
``initialize`` and may keep a session. The stateless era (2026-07-28 on) names the version in
every request's ``_meta`` and has no handshake and no session.
"""

from __future__ import annotations

#: Handshake-era versions, oldest first: ``initialize`` negotiates one of these.
SUPPORTED = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST = SUPPORTED[-1]
#: Stateless-era versions, oldest first: named per request in ``_meta``.
MODERN = ("2026-07-28",)
LATEST_MODERN = MODERN[-1]
#: Every version this endpoint serves, newest first: ``server/discover``'s ``supportedVersions``
#: and -32022's ``data.supported`` (one list, so a client never sees two answers).
ADVERTISED = tuple(reversed(SUPPORTED + MODERN))
#: Assumed for an HTTP request that names no version and belongs to no known session (spec).
HTTP_DEFAULT = "2025-03-26"


def negotiate(requested: object) -> str:
    """Echo a supported version; otherwise answer our latest (never an error)."""
    return requested if isinstance(requested, str) and requested in SUPPORTED else LATEST


def is_supported(version: str) -> bool:
    return version in SUPPORTED


def is_modern(version: str) -> bool:
    return version in MODERN


def is_legacy(version: object) -> bool:
    """A handshake-era version (how a version header that keeps today's 2025 path reads)."""
    return isinstance(version, str) and version in SUPPORTED


# ISO dates compare correctly as strings.
def has_annotations(version: str) -> bool:
    return version >= "2025-03-26"


def has_structured_output(version: str) -> bool:
    """``title`` on tools and implementations, ``outputSchema`` and ``structuredContent``."""
    return version >= "2025-06-18"


def has_icons(version: str) -> bool:
    return version >= "2025-11-25"


def allows_batches(version: str) -> bool:
    return version == "2025-03-26"


def has_result_type(version: str) -> bool:
    """``resultType``, ``_meta`` serverInfo and caching hints on results (stateless era)."""
    return version >= LATEST_MODERN


def batch_refusal(version: str) -> str | None:
    """Why a JSON-RPC batch is refused under ``version``, or None when batches are allowed.

    The one place the batch rule is decided; every transport asks here.
    """
    if allows_batches(version):
        return None
    return f"Batches are not allowed in protocol version {version}"


def has_progress_message(version: str) -> bool:
    return version >= "2025-03-26"
