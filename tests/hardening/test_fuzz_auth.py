"""Property-based attacks on the gate: near-miss keys, garbage Authorization headers, forged
session ids. Nothing but the exact key passes; nothing crashes; nothing is logged in clear."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from .conftest import FUZZ, KEY, OTHER_KEY

HEX = "0123456789abcdef"
LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")


@st.composite
def near_keys(draw) -> str:
    """The key, changed a little: one character, case, length, spacing, look-alikes."""
    key = draw(st.sampled_from([KEY, OTHER_KEY]))
    position = draw(st.integers(0, len(key) - 1))
    change = draw(
        st.sampled_from(
            [
                "substitute",
                "delete",
                "insert",
                "upper",
                "swap",
                "truncate",
                "extend",
                "inner_space",
                "lookalike",
                "double",
            ]
        )
    )
    if change == "substitute":
        other = draw(st.sampled_from(HEX + "ABCDEFgG0O"))
        assume(other != key[position])
        return key[:position] + other + key[position + 1 :]
    if change == "delete":
        return key[:position] + key[position + 1 :]
    if change == "insert":
        return key[:position] + draw(st.sampled_from(HEX)) + key[position:]
    if change == "upper":
        assume(any(c.isalpha() for c in key))
        return key.upper() if draw(st.booleans()) else key[:position] + key[position:].upper()
    if change == "swap":
        assume(position + 1 < len(key) and key[position] != key[position + 1])
        return key[:position] + key[position + 1] + key[position] + key[position + 2 :]
    if change == "truncate":
        return key[:position]
    if change == "extend":
        return key + draw(st.text(st.sampled_from(HEX), min_size=1, max_size=8))
    if change == "inner_space":  # inside the key: at its ends, space and tab are HTTP's spacing
        position = max(position, 1)
        return key[:position] + draw(st.sampled_from([" ", "\t", "\u00a0"])) + key[position:]
    if change == "lookalike":  # fullwidth digit or Cyrillic 'а' for 'a'
        swaps = {"0": "\uff10", "1": "\uff11", "a": "\u0430", "e": "\u0435", "c": "\u0441"}
        assume(key[position] in swaps)
        return key[:position] + swaps[key[position]] + key[position + 1 :]
    return key + key


def assert_refused(reply) -> None:
    assert reply.status in (400, 401), (reply.status, reply.body[:200])
    assert reply.content_type.startswith("application/json")
    assert reply.json()["status"] == reply.status


@FUZZ
@given(variant=near_keys(), via=st.sampled_from(["header", "query", "lowercase-scheme"]))
def test_nothing_but_the_exact_key_passes(live_server, variant, via):
    assume(variant not in (KEY, OTHER_KEY))
    if via == "query":
        from urllib.parse import quote

        reply = live_server.request(
            "GET", "/mcp/tools?api_key=" + quote(variant, safe=""), key=None
        )
    else:
        scheme = "bearer" if via == "lowercase-scheme" else "Bearer"
        try:
            (f"{scheme} {variant}").encode("latin-1")
        except UnicodeEncodeError:
            assume(False)
        reply = live_server.request(
            "GET", "/mcp/tools", key=None, headers={"Authorization": f"{scheme} {variant}"}
        )
    assert_refused(reply)


@FUZZ
@given(
    value=st.text(LATIN1, max_size=200)
    | st.sampled_from(
        [
            "Bearer",
            "Bearer ",
            "Basic " + KEY,
            "Token " + KEY,
            "Bearer " + KEY + " " + KEY,
            "Bearer " + KEY + "," + "Bearer " + KEY,
            "Digest username=x",
            "Bearer " + "a" * 10000,
            "Bearer ../../",
            "Bearer \u00ff" * 3,
            "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==",
        ]
    )
)
def test_any_authorization_header_but_the_right_one_is_refused(live_server, value):
    assume(value.strip() not in (f"Bearer {KEY}", f"Bearer {OTHER_KEY}"))
    reply = live_server.request("GET", "/mcp/tools", key=None, headers={"Authorization": value})
    assert_refused(reply)


@pytest.fixture(scope="module")
def session_id(live_server) -> str:
    reply = live_server.request(
        "POST",
        "/mcp",
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {}},
            }
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    return reply.headers["mcp-session-id"]


@st.composite
def forged_session_ids(draw, valid: str) -> str:
    issued, nonce, mac = valid.split(".")
    kind = draw(st.sampled_from(["random", "flip", "reissue", "renonce", "parts", "long"]))
    if kind == "random":
        return draw(st.text(LATIN1, min_size=1, max_size=150))
    if kind == "flip":
        position = draw(st.integers(0, len(valid) - 1))
        replacement = draw(st.sampled_from("AbZ09-_.x\u00e9"))
        assume(replacement != valid[position])
        return valid[:position] + replacement + valid[position + 1 :]
    if kind == "reissue":  # an older or later issue time under the same MAC
        return f"{draw(st.integers(0, 2**40)):x}.{nonce}.{mac}"
    if kind == "renonce":
        return f"{issued}.{draw(st.text(st.sampled_from(HEX + 'ABC-_'), max_size=30))}.{mac}"
    if kind == "parts":
        return ".".join(draw(st.lists(st.sampled_from([issued, nonce, mac, ""]), max_size=5)))
    return valid + draw(st.text(st.sampled_from("abc."), min_size=1, max_size=100))


@FUZZ
@given(data=st.data(), verb=st.sampled_from(["POST", "GET", "DELETE"]))
def test_forged_session_ids_are_not_found(live_server, session_id, data, verb):
    forged = data.draw(forged_session_ids(session_id))
    assume(forged.strip() != session_id)
    headers = {
        "Mcp-Session-Id": forged,
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if verb == "GET" else "application/json",
    }
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}' if verb == "POST" else None
    reply = live_server.request(verb, "/mcp", body, headers=headers)
    assert reply.status in (400, 404), (forged, reply.status, reply.body[:200])
    # The genuine id still works: a forgery cannot end or evict it.
    genuine = live_server.request(
        "POST",
        "/mcp",
        b'{"jsonrpc":"2.0","id":2,"method":"ping"}',
        headers={"Mcp-Session-Id": session_id, "Content-Type": "application/json"},
    )
    assert genuine.status == 200
