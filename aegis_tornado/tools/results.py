"""Finishing a tool's result: every string sanitised, the whole kept within
``MAX_RESULT_BYTES``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson

from ..gitea import Page
from .sanitize import clean_text, truncate_utf8

__all__ = ["ResultFinisher", "encoded_size", "fit_result", "list_result"]

#: Shorter than every secret format the sanitiser knows (names, refs, dates, states...).
_SHORTEST_SECRET = 16
#: Text longer than this is cleaned off the event loop.
_CLEAN_IN_THREAD_BYTES = 64 * 1024


class ResultFinisher:
    """Sanitises results and keeps them within ``max_result_bytes``.

    ``withheld`` are the server's own secrets (the Gitea token): redacted from every result,
    whatever the content that carries them (a committed CI file, an echoing proxy).
    """

    def __init__(self, max_result_bytes: int, withheld: tuple[str, ...] = ()) -> None:
        self.max_result_bytes = max_result_bytes
        self.withheld = tuple(secret for secret in withheld if secret)
        #: Below this length a string can hold no secret format and no withheld token.
        self._shortest_secret = min([_SHORTEST_SECRET, *(len(s) for s in self.withheld)])

    async def clean(self, text: str | None) -> tuple[str | None, int, tuple[str, ...]]:
        """Strip invisible characters and redact secrets (off the loop for big texts)."""
        if not text or (
            len(text) < self._shortest_secret and text.isascii() and text.isprintable()
        ):
            return text, 0, ()  # nothing invisible, and too short for any secret it knows
        # The withheld token is redacted in every encoding (plain, base64, hex, percent).
        if len(text) > _CLEAN_IN_THREAD_BYTES:
            result = await asyncio.to_thread(clean_text, text, self.withheld)
        else:
            result = clean_text(text, self.withheld)
        return result.text, result.invisible_removed, tuple(result.redactions)

    async def finish(self, value: dict[str, Any]) -> dict[str, Any]:
        """Sanitise every string in the result, then keep it within the size limit."""
        invisible = 0
        redactions: list[str] = []

        async def walk(node: Any) -> Any:
            nonlocal invisible
            if isinstance(node, str):
                text, removed, found = await self.clean(node)
                invisible += removed
                redactions.extend(found)
                return text
            if isinstance(node, dict):
                return {k: await walk(v) for k, v in node.items()}
            if isinstance(node, list):
                return [await walk(v) for v in node]
            return node

        cleaned = await walk(value)
        if invisible or redactions:
            cleaned["sanitized"] = {
                "invisible_characters_removed": invisible,
                "secrets_redacted": sorted(set(redactions)),
            }
        return fit_result(cleaned, self.max_result_bytes)


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as the compact JSON text a tool result carries (mcp.protocol)."""
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError:  # a lone surrogate, a huge integer: the json path's size
        return len(
            json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
        )


#: Lists a result may lose whole entries from (from the end), and what to say when it does.
_DROPPABLE_LISTS = {
    "items": "ask for a smaller limit or the next page",
    "results": "search with more specific words to see the rest",
}
#: Strings that are never shortened: a cut id, URL, name or path is a wrong one, not a
#: shorter one.
_NEVER_CUT = frozenset(
    {"id", "url", "html_url", "full_name", "owner", "repo", "path", "ref", "sha", "truncated_note"}
)


def fit_result(value: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Keep a result within ``max_bytes`` of JSON, saying what was cut.

    A list of entries (``items``, or ``results`` of ``search``) loses whole entries from the
    end; otherwise the longest strings are shortened, never an id, URL, name or path. Either
    way the result says ``truncated: true`` and how to get the rest.
    """
    if encoded_size(value) <= max_bytes:
        return value
    value = dict(value)
    for key, advice in _DROPPABLE_LISTS.items():
        entries = value.get(key)
        if not isinstance(entries, list) or not entries:
            continue
        kept = list(entries)
        while kept and encoded_size({**value, key: kept}) > max_bytes - 300:
            kept.pop()
        omitted = len(entries) - len(kept)
        value.update(
            {key: kept},
            truncated=True,
            truncated_note=f"{omitted} {key[:-1]}(s) omitted to stay under {max_bytes} bytes; "
            + advice,
        )
        if key == "items":
            value["has_more"] = True
        if encoded_size(value) <= max_bytes:
            return value
    # Shorten the longest strings until it fits.
    value["truncated"] = True
    value.setdefault("truncated_note", f"long text was cut to stay under {max_bytes} bytes")
    for _ in range(50):
        excess = encoded_size(value) - max_bytes
        if excess <= 0:
            break
        path, text = _longest_string(value)
        if text is None or not text:
            break
        budget = max(0, len(text.encode("utf-8")) - excess - 200)
        _set_path(value, path, truncate_utf8(text, budget)[0] + " [...truncated]")
    return value


def _longest_string(node: Any, path: tuple = ()) -> tuple[tuple, str | None]:
    best: tuple[tuple, str | None] = ((), None)
    if isinstance(node, str):
        return path, node
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        if key in _NEVER_CUT:
            continue
        found = _longest_string(child, path + (key,))
        if found[1] is not None and (best[1] is None or len(found[1]) > len(best[1])):
            best = found
    return best


def _set_path(node: Any, path: tuple, value: str) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def list_result(page: Page, items: list[Any], *, total_known: bool = True) -> dict[str, Any]:
    """The shape every list tool returns."""
    return {
        "items": items,
        "page": page.page,
        "limit": page.limit,
        "has_more": page.has_more,
        "total": page.total if total_known else None,
    }
