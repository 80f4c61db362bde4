"""Hypothesis strategies for hostile input: JSON, JSON-RPC, raw bodies, and tool arguments derived
from each tool's own input schema."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

#: Strings that have hurt path handling, logging or parsers somewhere.
NASTY_STRINGS = (
    "",
    " ",
    "\t",
    "\x00",
    "a\x00b",
    "..",
    "../..",
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "%252e%252e%252f",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "..\\..\\windows",
    "\\\\server\\share",
    "file:///etc/passwd",
    "http://169.254.169.254/",
    "~root",
    "*",
    "?",
    "#",
    "%00",
    "%",
    "{{7*7}}",
    "${jndi:ldap://x}",
    "<script>",
    "' OR 1=1 --",
    "\r\nSet-Cookie: x=1",
    "\u202e\u2066",
    "\ufeff",
    "\u200b",
    "\ufffd",
    "A" * 300,
    "é" * 200,
    "/" * 500,
    "a/" * 300,
    ".git/config",
    ".env",
    "owner/repo",
    "owner/../other",
    "\U0001f600" * 50,
    "NaN",
    "Infinity",
    "null",
    "true",
    "[]",
    "{}",
)

_characters = st.characters() | st.characters(categories=["Cs"])  # lone surrogates included
texts = st.text(_characters, max_size=40) | st.sampled_from(NASTY_STRINGS)
big_texts = st.integers(1000, 200_000).map(lambda n: "x" * n)
integers = (
    st.integers(-(2**31), 2**31)
    | st.integers()
    | st.sampled_from([0, -1, 1, 2**53, 2**53 + 1, 2**63, -(2**63) - 1, 10**300])
)
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.5, -0.0, 1e-300, 1e300]
)
scalars = st.none() | st.booleans() | integers | floats | texts


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


# --- JSON-RPC -----------------------------------------------------------------------------

METHODS = (
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "resources/list",
    "prompts/list",
    "completion/complete",
    "server/discover",
    "rpc.discover",
    "__proto__",
    "",
)
VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28", "1.0", "")


def request_ids() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(-(2**63), 2**63),
        st.text(max_size=20),
        st.none(),
        floats,
        st.booleans(),
        st.lists(st.integers(), max_size=2),
        st.just(10**300),
    )


def params_for(tool_names: list[str], arguments: st.SearchStrategy) -> st.SearchStrategy[Any]:
    names = st.sampled_from(tool_names) if tool_names else texts
    meta = st.fixed_dictionaries({}, optional={"progressToken": scalars, "other": json_values(4)})
    shaped = st.fixed_dictionaries(
        {},
        optional={
            "name": names | texts | scalars,
            "arguments": arguments | json_values(6),
            "_meta": meta | json_values(4),
            "protocolVersion": st.sampled_from(VERSIONS) | scalars,
            "capabilities": json_values(4),
            "clientInfo": st.fixed_dictionaries(
                {}, optional={"name": texts | scalars, "version": texts}
            ),
            "level": st.sampled_from(["debug", "info", "error", "loud"]) | scalars,
            "requestId": request_ids(),
            "cursor": texts | scalars,
            "unknownField": json_values(4),
        },
    )
    return shaped | json_values(6)


def jsonrpc_messages(tool_names: list[str], arguments: st.SearchStrategy) -> st.SearchStrategy[Any]:
    message = st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0") | st.just("2.0") | st.sampled_from(["1.0", "2", 2.0]) | scalars},
        optional={
            "id": request_ids(),
            "method": st.sampled_from(METHODS) | texts | scalars,
            "params": params_for(tool_names, arguments),
            "result": json_values(4),
            "error": json_values(4),
            "extra": json_values(4),
        },
    )
    return message | json_values(8)


def mcp_payloads(tool_names: list[str], arguments: st.SearchStrategy) -> st.SearchStrategy[Any]:
    """A message, a batch of them, or any JSON at all."""
    message = jsonrpc_messages(tool_names, arguments)
    return st.one_of(message, message, st.lists(message, max_size=4), json_values(10))


# --- raw bodies ---------------------------------------------------------------------------


@st.composite
def raw_bodies(draw, payloads: st.SearchStrategy[Any]) -> bytes:
    """Bytes: encoded payloads, possibly mangled at the byte level."""
    value = draw(payloads)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    data = text.encode("utf-8", "surrogatepass")
    mangle = draw(
        st.sampled_from(
            [
                "none",
                "none",
                "none",
                "truncate",
                "insert_bytes",
                "duplicate_key",
                "nest",
                "number",
                "constant",
                "bom",
                "binary",
                "pad",
            ]
        )
    )
    if mangle == "truncate" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif mangle == "insert_bytes":
        at = draw(st.integers(0, len(data)))
        junk = draw(
            st.binary(min_size=1, max_size=8)
            | st.sampled_from(
                [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x00", b"\xf4\x90\x80\x80", b"\xe2\x82"]
            )
        )
        data = data[:at] + junk + data[at:]
    elif mangle == "duplicate_key" and data.startswith(b"{") and len(data) > 2:
        key = draw(
            st.sampled_from(
                [
                    b'"id"',
                    b'"method"',
                    b'"jsonrpc"',
                    b'"params"',
                    b'"tool"',
                    b'"name"',
                    b'"arguments"',
                ]
            )
        )
        data = (
            b"{"
            + key
            + b":"
            + json.dumps(draw(scalars)).encode("utf-8", "surrogatepass")
            + b","
            + data[1:]
        )
    elif mangle == "nest":
        depth = draw(st.integers(1, 5000))
        data = b"[" * depth + data + b"]" * depth
    elif mangle == "number":
        data = draw(
            st.sampled_from(
                [
                    b"1e999999",
                    b"-1e400",
                    b"1" * 5000,
                    b"0." + b"0" * 5000 + b"1",
                    b"-0",
                    b"1.5e308",
                    b"123456789012345678901234567890",
                ]
            )
        )
        data = b'{"jsonrpc":"2.0","id":' + data + b',"method":"ping"}'
    elif mangle == "constant":
        data = (
            b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":'
            + draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"undefined", b"None"]))
            + b"}}"
        )
    elif mangle == "bom":
        data = b"\xef\xbb\xbf" + data
    elif mangle == "binary":
        data = draw(st.binary(max_size=200))
    elif mangle == "pad":
        data = b" " * draw(st.integers(0, 2000)) + data
    return data


# --- tool arguments from input schemas ----------------------------------------------------


def _valid_value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    options = []
    for kind in kinds:
        if kind == "string":
            low, high = schema.get("minLength", 0), schema.get("maxLength", 200)
            options.append(
                st.text(min_size=low, max_size=min(high, 200))
                | st.sampled_from([s for s in NASTY_STRINGS if low <= len(s) <= high] or [""])
            )
        elif kind == "integer":
            options.append(st.integers(schema.get("minimum"), schema.get("maximum")))
        elif kind == "number":
            options.append(
                st.floats(
                    schema.get("minimum"),
                    schema.get("maximum"),
                    allow_nan=False,
                    allow_infinity=False,
                )
            )
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "array":
            item = schema.get("items", {})
            options.append(
                st.lists(
                    _valid_value(item) if item else scalars,
                    max_size=min(schema.get("maxLength", 5), 5),
                )
            )
        elif kind == "object":
            options.append(tool_arguments(schema))
        elif kind == "null":
            options.append(st.none())
    return st.one_of(options) if options else scalars


def _boundary_values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    values: list[Any] = []
    for bound, step in (("minimum", -1), ("maximum", 1)):
        if bound in schema:
            values += [schema[bound], schema[bound] + step, schema[bound] + step * 0.5]
    if "maxLength" in schema:
        values += ["x" * schema["maxLength"], "x" * (schema["maxLength"] + 1)]
    values += [2**63, -(2**63) - 1, 1e308, -1e308, 0.1, 10**100, ""]
    return st.sampled_from(values)


def argument_value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mostly valid values, often wrong types, edge values and hostile strings."""
    return st.one_of(
        _valid_value(schema),
        _valid_value(schema),
        _boundary_values(schema),
        scalars,
        json_values(6),
        big_texts,
    )


@st.composite
def tool_arguments(draw, schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties", {})
    required = list(schema.get("required", []))
    arguments: dict[str, Any] = {}
    for name, sub in properties.items():
        if name in required or draw(st.booleans()):
            arguments[name] = draw(argument_value(sub))
    if required and draw(st.integers(0, 9)) == 0:
        arguments.pop(draw(st.sampled_from(required)), None)  # a required one missing
    if draw(st.integers(0, 5)) == 0:
        arguments.update(draw(st.dictionaries(texts, json_values(4), min_size=1, max_size=3)))
    return arguments


def any_tool_call(registry) -> st.SearchStrategy[tuple[str, Any]]:
    """(tool name, arguments) for any tool of ``registry``, arguments from its schema."""
    calls = [st.tuples(st.just(tool.name), tool_arguments(tool.input_schema)) for tool in registry]
    return st.one_of(calls)


# --- Gitea tool arguments: the schema's values, mixed with names and paths that exist -------

#: Real names of the Gitea double's world, their case variants, the renamed repository
#: (northwind/beacon redirects to northwind/lighthouse) and near misses.
KNOWN_OWNERS = (
    "northwind",
    "NorthWind",
    "NORTHWIND",
    "alice",
    "Alice",
    "carol",
    " northwind ",
    "northwind\t",
    "north%77ind",
    "northwind/lighthouse",
    "ghost",
    "api",
)
KNOWN_REPOS = (
    "lighthouse",
    "LightHouse",
    "lighthouse ",
    "beacon",
    "Beacon",
    "deploy-config",
    "Deploy-Config",
    "notes",
    "dotfiles",
    "empty-sandbox",
    "hr-payroll",
    "lighthouse-plugin-slack",
    "lighthouse.git",
    "lighthouse.wiki",
    "lighthouse/..",
    "%6cighthouse",
    "..",
    "incident-response",
)
KNOWN_PATHS = (
    "",
    "README.md",
    "src",
    "src/lighthouse",
    "src/lighthouse/checks/http/probe.py",
    ".env",
    ".ENV",
    "config/.env.local",
    "deploy/id_rsa",
    "deploy/ID_RSA",
    "deploy/id_rsa.pub",
    "certs/server.pem",
    "certs",
    "deploy",
    ".env.production",
    "./.env",
    "deploy//id_rsa",
    "deploy/./id_rsa",
    "deploy/x/../id_rsa",
    "%2eenv",
    "%252eenv",
    "deploy%2fid_rsa",
    "..%2f.env",
    "%2e%2e/%2e%2e/etc/passwd",
    "%252e%252e/%252e%252e/etc/passwd",
    "/etc/passwd",
    "//etc/passwd",
    "\\.env",
    "deploy\\id_rsa",
    ".env\x00.txt",
    "README.md\x00",
    "deploy/id_rsa\u200b",
    ".env\u202e",
    "．env",
    "deploy/id_rsa/",
    "data/sample-metrics.csv",
    "docs/images/logo.png",
    "x" * 300,
    "a/" * 2100,
)
KNOWN_REFS = (
    "main",
    "MAIN",
    "v1.0.0",
    "v1.3.0-rc1",
    "6253de1025f3be4c6136adbf11af3fac2dfd37fa",
    "6253de10",
    "refs/heads/main",
    "fix/dns-flake",
    "main..v1.0.0",
    "main~1",
    "@{-1}",
    "-main",
    "main\x00",
    "../main",
    "ma in",
    "HEAD",
)
KNOWN_SHAS = (
    "6253de10",
    "6253de1025f3be4c6136adbf11af3fac2dfd37fa",
    "0000",
    "deadbeef",
    "6253DE10",
    "zzzz",
    "6253de10/../x",
    "6253de10\x00",
)
KNOWN_NUMBERS = (1, 3, 12, 66, 0, -1, 2**31 - 1, 2**31, 2**63, "3", 3.0, 3.5, True, None)
KNOWN_QUERIES = (
    "dns",
    "lighthouse",
    "env",
    "id_rsa",
    ".env",
    "deploy",
    "beacon",
    "secret",
    "%",
    "_",
    "*",
    "' OR 1=1 --",
    "a" * 200,
    "\x00",
    "  ",
)


def _fetch_ids() -> st.SearchStrategy[str]:
    owner_repo = st.tuples(st.sampled_from(KNOWN_OWNERS), st.sampled_from(KNOWN_REPOS)).map(
        lambda pair: f"{pair[0]}/{pair[1]}"
    )
    return st.one_of(
        owner_repo.map(lambda name: f"repo:{name}"),
        st.tuples(
            st.sampled_from(["issue", "pull"]), owner_repo, st.sampled_from(KNOWN_NUMBERS).map(str)
        ).map(lambda t: f"{t[0]}:{t[1]}#{t[2]}"),
        st.tuples(owner_repo, st.sampled_from(KNOWN_SHAS)).map(lambda t: f"commit:{t[0]}@{t[1]}"),
        st.tuples(owner_repo, st.sampled_from(KNOWN_REFS), st.sampled_from(KNOWN_PATHS)).map(
            lambda t: f"file:{t[0]}@{t[1]}:{t[2]}"
        ),
        texts,
    )


_KNOWN: dict[str, st.SearchStrategy[Any]] = {
    "owner": st.sampled_from(KNOWN_OWNERS),
    "repo": st.sampled_from(KNOWN_REPOS),
    "path": st.sampled_from(KNOWN_PATHS),
    "ref": st.sampled_from(KNOWN_REFS),
    "sha": st.sampled_from(KNOWN_SHAS),
    "number": st.sampled_from(KNOWN_NUMBERS),
    "query": st.sampled_from(KNOWN_QUERIES),
    "id": _fetch_ids(),
}


@st.composite
def gitea_tool_arguments(draw, schema: dict[str, Any]) -> dict[str, Any]:
    """Half the time arguments from the schema (as :func:`tool_arguments`) with some names,
    paths, refs and ids swapped for ones that exist or nearly exist; half the time only such
    names and otherwise valid values, so that calls reach the policy and Gitea."""
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    if draw(st.booleans()):
        arguments = draw(tool_arguments(schema))
        for name in properties:
            known = _KNOWN.get(name)
            if known is not None and draw(st.integers(0, 3)) > 0:
                if name in required or name in arguments or draw(st.booleans()):
                    arguments[name] = draw(known)
        return arguments
    arguments = {}
    for name, sub in properties.items():
        if name in required or draw(st.integers(0, 2)) == 0:
            known = _KNOWN.get(name)
            arguments[name] = draw(known if known is not None else _valid_value(sub))
    return arguments


def any_gitea_tool_call(registry) -> st.SearchStrategy[tuple[str, Any]]:
    return st.one_of(
        [
            st.tuples(st.just(tool.name), gitea_tool_arguments(tool.input_schema))
            for tool in registry
        ]
    )
