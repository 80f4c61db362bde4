"""Per-key tool-call slots (``MAX_CALLS_PER_KEY``) shared by every replica through Redis.

The same rule as ``aegis_tornado.web.fairness.CallSlots`` (at most ``per_key`` of a key's tool
calls in progress at once), counted across replicas with the leases of ``leases.py``: one sorted
set per key, ``aegis:calls:<key id>``, one lease per call in progress, renewed while the call
runs, given back when it ends, expiring on its own when its replica dies.

Redis unavailable: ``StateUnavailable``; the caller refuses the call (503 with ``Retry-After``)
rather than run it unchecked, as the shared limiter does. A release that cannot reach Redis is
left to the lease. An expired slot is not brought back by a renewal (a call cannot run over the
cap because of an outage).
"""

from __future__ import annotations

from .leases import SharedLeases
from .store import StateStore


class SharedCallSlots(SharedLeases):
    """Async twin of ``CallSlots``: ``await take(key_id, count)`` takes up to ``count`` free
    slots and returns how many it took and their release (sync, idempotent)."""

    def __init__(self, store: StateStore, per_key: int, lease: float = 30.0) -> None:
        super().__init__(store, "calls", per_key, lease)
