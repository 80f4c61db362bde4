"""Protocol versions this server speaks, and what each one allows on the wire."""

from __future__ import annotations

SUPPORTED = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST = SUPPORTED[-1]
#: Assumed for an HTTP request that names no version and belongs to no known session (spec).
HTTP_DEFAULT = "2025-03-26"


def negotiate(requested: object) -> str:
    """Echo a supported version; otherwise answer our latest (never an error)."""
    return requested if isinstance(requested, str) and requested in SUPPORTED else LATEST


def is_supported(version: str) -> bool:
    return version in SUPPORTED


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


def batch_refusal(version: str) -> str | None:
    """Why a JSON-RPC batch is refused under ``version``, or None when batches are allowed.

    The one place the batch rule is decided; every transport asks here.
    """
    if allows_batches(version):
        return None
    return f"Batches are not allowed in protocol version {version}"


def has_progress_message(version: str) -> bool:
    return version >= "2025-03-26"
