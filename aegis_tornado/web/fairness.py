"""Fair shares between keys: tool calls in progress per key, and the size of batch replies.

One key's burst must not hold the Gitea connection pool (``GITEA_POOL_SIZE``) that every key
shares: at most ``MAX_CALLS_PER_KEY`` of a key's tool calls run at once. A request whose tool
call finds no free slot gets 429 with ``Retry-After``; a batch runs as many of its calls as
there are free slots and answers each of the others with a JSON-RPC error saying to retry it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..mcp.jsonrpc import Message, encode, error_response

#: JSON-RPC "server error" range: the call was not run, and may be retried.
BUSY = -32000


class CallSlots:
    """Tool calls in progress, per key."""

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._in_use: dict[str, int] = {}

    def free(self, key_id: str) -> int:
        return self.per_key - self._in_use.get(key_id, 0)

    def in_use(self, key_id: str | None = None) -> int:
        if key_id is None:
            return sum(self._in_use.values())
        return self._in_use.get(key_id, 0)

    def take(self, key_id: str, count: int) -> Callable[[], None]:
        """Take ``count`` slots (the caller checked ``free``); returns their release, which
        may be called more than once."""
        if count <= 0:
            return _nothing
        self._in_use[key_id] = self._in_use.get(key_id, 0) + count
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._in_use.get(key_id, 0) - count
            if left > 0:
                self._in_use[key_id] = left
            else:
                self._in_use.pop(key_id, None)

        return release


def _nothing() -> None:
    return None


def tool_calls(items: list[Any]) -> list[Message]:
    return [
        m for m in items if isinstance(m, Message) and m.is_request and m.method == "tools/call"
    ]


def busy_reply(message: Message, per_key: int) -> dict[str, Any]:
    return error_response(
        message.id,
        BUSY,
        f"Too many tool calls of this key in progress (at most {per_key} at once); "
        "retry this call shortly",
    )


def bound_batch(replies: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """A batch's replies, at most ``limit`` bytes in all: once the budget is spent, each
    further result is replaced by a short error asking for fewer calls at once."""
    total = 0
    bounded = []
    for reply in replies:
        size = len(encode(reply).encode("utf-8"))
        if total + size > limit and "result" in reply:
            reply = error_response(
                reply.get("id"),
                BUSY,
                f"The batch's replies exceed {limit} bytes; send this call again on its own "
                "or in a smaller batch",
            )
            size = len(encode(reply).encode("utf-8"))
        total += size
        bounded.append(reply)
    return bounded
