"""One strict decoder for every request body, whatever the transport.

Python's ``json`` module accepts more than JSON, and more than a client could mean
unambiguously: ``NaN`` and ``Infinity``, numbers that overflow to infinity, lone UTF-16
surrogates that no UTF-8 text can hold, and duplicate keys (where the last one silently wins, so
two parsers can read two different requests from the same bytes). All of these are refused here,
with a reason the client can act on, as is nesting deeper than ``MAX_DEPTH``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Values nested deeper than this are refused before Python's recursion limit is in play.
MAX_DEPTH = 64

_SURROGATE = re.compile("[\ud800-\udfff]")


class UnacceptableJson(ValueError):
    """The body is not JSON this server accepts. ``message`` is safe to show the client;
    ``structural`` is True when the JSON parsed but its shape is refused (nesting depth)."""

    def __init__(self, message: str, *, structural: bool = False):
        super().__init__(message)
        self.message = message
        self.structural = structural


def _reject_constant(name: str) -> Any:
    raise UnacceptableJson(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnacceptableJson("a number is too large")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise UnacceptableJson(f"duplicate key {json.dumps(key[:40])}")
            seen.add(key)
    return value


def _check_shape(value: Any) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UnacceptableJson(f"nested deeper than {MAX_DEPTH} levels", structural=True)
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise UnacceptableJson(
                    "a string holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text"
                )
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def decode(body: bytes | str) -> Any:
    """The JSON value in ``body``; ``UnacceptableJson`` says why not."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise UnacceptableJson("not valid UTF-8") from None
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except UnacceptableJson:
        raise
    except RecursionError:
        raise UnacceptableJson(f"nested deeper than {MAX_DEPTH} levels", structural=True) from None
    except json.JSONDecodeError as error:
        raise UnacceptableJson(f"{error.msg} (line {error.lineno}, column {error.colno})") from None
    except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        raise UnacceptableJson("an integer has too many digits") from None
    _check_shape(value)
    return value


def without_surrogates(text: str) -> str:
    """``text`` with any lone surrogate replaced by U+FFFD, so it can be sent as UTF-8."""
    try:
        text.encode("utf-8")  # in C; almost always succeeds, far cheaper than the scan
        return text
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)


def finite(value: Any) -> Any:
    """A copy of ``value`` with NaN and infinities replaced by None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
