"""The stateless era (MCP 2026-07-28): the per-request envelope and the order it is checked in.

A request of this era names its protocol version and the client's capabilities in
``params._meta`` instead of a handshake, and the transport repeats its routing facts beside the
body (on HTTP: ``MCP-Protocol-Version``, ``Mcp-Method``, ``Mcp-Name``). Admission runs in the
order clients and the conformance suite rely on, first failure wins:

1. the envelope: ``_meta`` with ``protocolVersion`` and a ``clientCapabilities`` object (-32602);
2. the routing facts agree with the body (-32020);
3. the version is one this server speaks (-32022, naming the versions it does);
4. the method exists in this era (-32601; ``initialize``, ``ping`` and friends are gone).

Each failure is a ``Rejection`` whose ``kind`` lets a transport choose its status (HTTP: 400 or
404) without this module knowing about HTTP.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import versions
from .jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, JsonRpcError, Message

PREFIX = "io.modelcontextprotocol/"
PROTOCOL_VERSION = PREFIX + "protocolVersion"
CLIENT_CAPABILITIES = PREFIX + "clientCapabilities"
CLIENT_INFO = PREFIX + "clientInfo"
LOG_LEVEL = PREFIX + "logLevel"
SERVER_INFO = PREFIX + "serverInfo"

HEADER_MISMATCH = -32020
MISSING_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022

#: Methods whose target is repeated in the routing facts (``Mcp-Name``), and the param it names.
NAMED_TARGET = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

#: Handshake-era methods this era removed: a request for one is "method not found".
REMOVED_METHODS = frozenset(
    {"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}
)

_BASE64_SENTINEL = re.compile(r"=\?base64\?(?P<payload>.*)\?=", re.DOTALL)
_VISIBLE = re.compile(r"[\x20-\x7e]*")


class Rejection(JsonRpcError):
    """A request refused before it ran. ``kind``: ``malformed``, ``mismatch``, ``unsupported``,
    ``capability`` or ``not_found``."""

    def __init__(
        self, kind: str, code: int, message: str, data: Any = None, request_id: Any = None
    ):
        super().__init__(code, message, data, request_id)
        self.kind = kind


@dataclass(frozen=True)
class Routing:
    """What the transport carried beside the body (None: absent)."""

    protocol_version: str | None
    method: str | None
    name: str | None


@dataclass(frozen=True)
class Envelope:
    """The request's own ``_meta`` facts."""

    version: str
    client_capabilities: dict[str, Any]
    client_name: str | None
    log_level: Any  # validated later: an unknown level is a params error, not a rejection


def selects_stateless(message: Message | None, version_header: str | None) -> bool:
    """Whether a message takes the stateless path: it carries a 2026 ``_meta`` version, or the
    transport names a version that is not a handshake-era one. Everything else (``initialize``
    without ``_meta``, session traffic, no version at all) keeps the handshake era."""
    if version_header is not None and not versions.is_legacy(version_header.strip()):
        return True
    if message is None:
        return False
    meta = message.params.get("_meta")
    return isinstance(meta, dict) and PROTOCOL_VERSION in meta


def read_envelope(message: Message) -> Envelope:
    meta = message.params.get("_meta")
    if not isinstance(meta, dict):
        raise _malformed(message, f"Invalid params: _meta with {PROTOCOL_VERSION} is required")
    if PROTOCOL_VERSION not in meta:
        raise _malformed(message, f"Invalid params: missing _meta {PROTOCOL_VERSION}")
    capabilities = meta.get(CLIENT_CAPABILITIES)
    if not isinstance(capabilities, dict):
        raise _malformed(message, f"Invalid params: _meta {CLIENT_CAPABILITIES} must be an object")
    version = meta[PROTOCOL_VERSION]
    if not isinstance(version, str):
        raise _malformed(message, f"Invalid params: _meta {PROTOCOL_VERSION} must be a string")
    info = meta.get(CLIENT_INFO)
    name = info.get("name") if isinstance(info, dict) else None
    return Envelope(
        version=version,
        client_capabilities=capabilities,
        client_name=name[:100] if isinstance(name, str) else None,
        log_level=meta.get(LOG_LEVEL),
    )


def check_routing(message: Message, envelope: Envelope, routing: Routing) -> None:
    """The routing facts must be present and say what the body says (-32020)."""
    if routing.protocol_version is None:
        raise _mismatch(message, "Header mismatch: MCP-Protocol-Version header is required")
    if routing.protocol_version != envelope.version:
        raise _mismatch(
            message,
            f"Header mismatch: MCP-Protocol-Version header value {_shown(routing.protocol_version)}"
            f" does not match _meta {PROTOCOL_VERSION} {_shown(envelope.version)}",
        )
    if routing.method is None:
        raise _mismatch(message, "Header mismatch: Mcp-Method header is required")
    if routing.method != message.method:
        raise _mismatch(
            message,
            f"Header mismatch: Mcp-Method header value {_shown(routing.method)} does not match "
            f"body method {_shown(message.method)}",
        )
    target_param = NAMED_TARGET.get(message.method or "")
    if target_param is None:
        return
    target = message.params.get(target_param)
    if target is None:
        return  # the method's own params check answers a missing name
    if routing.name is None:
        raise _mismatch(
            message, f"Header mismatch: Mcp-Name header is required for {message.method}"
        )
    decoded = decode_header_value(routing.name)
    if decoded is None:
        raise _mismatch(message, "Header mismatch: Mcp-Name header is not valid base64 or UTF-8")
    if decoded != target:
        raise _mismatch(
            message,
            f"Header mismatch: Mcp-Name header value {_shown(decoded)} does not match body "
            f"{target_param} {_shown(target)}",
        )


def check_version(message: Message, envelope: Envelope) -> None:
    if not versions.is_modern(envelope.version):
        raise Rejection(
            "unsupported",
            UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version"
            + (
                "; handshake-era versions are negotiated with initialize (without _meta)"
                if versions.is_legacy(envelope.version)
                else ""
            ),
            data={"supported": list(versions.ADVERTISED), "requested": envelope.version},
            request_id=message.id,
        )


def check_method(message: Message, known: Mapping[str, Any]) -> None:
    if message.method not in known:
        raise Rejection(
            "not_found",
            METHOD_NOT_FOUND,
            f"Method not found: {str(message.method)[:100]}"
            + (" (removed in 2026-07-28)" if message.method in REMOVED_METHODS else ""),
            request_id=message.id,
        )


def missing_capability(message: Message, required: dict[str, Any]) -> Rejection:
    """-32021: the call needs a client capability the request did not declare."""
    return Rejection(
        "capability",
        MISSING_CLIENT_CAPABILITY,
        f"This request needs the client capabilities {', '.join(sorted(required))}",
        data={"requiredCapabilities": required},
        request_id=message.id,
    )


def decode_header_value(value: str) -> str | None:
    """A routing value as sent: literal, or ``=?base64?…?=`` (UTF-8, canonical base64).
    None when the value is malformed, so it never matches a body value by accident."""
    value = value.strip(" \t")
    match = _BASE64_SENTINEL.fullmatch(value)
    if match is None:
        return value if _VISIBLE.fullmatch(value) else None
    payload = match.group("payload")
    try:
        raw = base64.b64decode(payload, validate=True)
        if base64.b64encode(raw).decode("ascii") != payload:
            return None
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _shown(value: Any) -> str:
    return repr(str(value)[:100])


def _malformed(message: Message, text: str) -> Rejection:
    return Rejection("malformed", INVALID_PARAMS, text, request_id=message.id)


def _mismatch(message: Message, text: str) -> Rejection:
    return Rejection("mismatch", HEADER_MISMATCH, text, request_id=message.id)
