"""Repository files as resources, and completion of their URIs, through the running server at
both eras: the same policy, sanitiser and caps as get_file_contents."""

from __future__ import annotations

import pytest

from aegis_tornado.tools.resources import parse_uri

from ..conftest import body_json

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
TEMPLATE = "gitea://{owner}/{repo}/{+path}"


async def modern(api, method: str, **params):
    message = {"jsonrpc": "2.0", "id": "r", "method": method, "params": {**params, "_meta": META}}
    headers = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
    if "uri" in params:
        headers["Mcp-Name"] = params["uri"]
    response = await api.mcp(message, headers=headers)
    return response.code, body_json(response)


async def legacy(api, method: str, **params):
    message = {"jsonrpc": "2.0", "id": 5, "method": method, "params": params}
    response = await api.mcp(message, headers={"MCP-Protocol-Version": "2025-11-25"})
    return body_json(response)


def test_uris():
    assert parse_uri("gitea://northwind/lighthouse/src/a%20b.py?ref=v1.0.0") == {
        "owner": "northwind",
        "repo": "lighthouse",
        "path": "src/a b.py",
        "ref": "v1.0.0",
    }
    for bad in ("test://x/y/z", "gitea://northwind/lighthouse", "gitea:///r/p", "gitea://o/r/p#f"):
        assert parse_uri(bad) is None, bad


@pytest.mark.gen_test(timeout=30)
async def test_discover_and_templates(api):
    _, discover = await modern(api, "server/discover")
    capabilities = discover["result"]["capabilities"]
    assert "resources" in capabilities and "completions" in capabilities
    code, reply = await modern(api, "resources/templates/list")
    assert code == 200
    result = reply["result"]
    assert [t["uriTemplate"] for t in result["resourceTemplates"]] == [TEMPLATE]
    assert result["cacheScope"] == "public" and result["ttlMs"] > 0
    _, listed = await modern(api, "resources/list")
    assert listed["result"]["resources"] == [] and "ttlMs" in listed["result"]


@pytest.mark.gen_test(timeout=30)
async def test_read_a_file_at_both_eras(api, logs):
    uri = "gitea://northwind/lighthouse/README.md"
    code, reply = await modern(api, "resources/read", uri=uri)
    assert code == 200
    result = reply["result"]
    assert result["resultType"] == "complete" and result["cacheScope"] == "private"
    [content] = result["contents"]
    assert content["uri"] == uri and content["text"].startswith("# Lighthouse")
    old = await legacy(api, "resources/read", uri=uri + "?ref=v1.0.0")
    assert old["result"]["contents"][0]["text"].startswith("# Lighthouse")
    assert "ttlMs" not in old["result"]  # handshake-era results keep their old shape
    # Audited as the tool call it is.
    assert [r["tool"] for r in logs.audit("tool_call")] == ["get_file_contents"] * 2


@pytest.mark.parametrize(
    "uri, says",
    [
        ("test://nonexistent-resource-for-conformance-testing", "Resource not found"),
        ("gitea://northwind/lighthouse/no/such/file.txt", "not found"),
        ("gitea://northwind/lighthouse/.env", ""),  # sensitive: refused by the file policy
        ("gitea://nobody/nothing/README.md", "not found"),
    ],
)
@pytest.mark.gen_test(timeout=30)
async def test_unknown_or_refused_resources_are_invalid_params_with_the_uri(api, uri, says):
    code, reply = await modern(api, "resources/read", uri=uri)
    assert code == 200 and reply["id"] == "r"
    assert reply["error"]["code"] == -32602
    assert reply["error"]["data"] == {"uri": uri}
    assert says in reply["error"]["message"]
    assert "result" not in reply


@pytest.mark.gen_test(timeout=30)
async def test_completion_of_the_template_arguments(api):
    ref = {"type": "ref/resource", "uri": TEMPLATE}

    async def complete(name, value, **known):
        params = {"ref": ref, "argument": {"name": name, "value": value}}
        if known:
            params["context"] = {"arguments": known}
        code, reply = await modern(api, "completion/complete", **params)
        assert code == 200, reply
        return reply["result"]["completion"]["values"]

    assert "northwind" in await complete("owner", "nor")
    assert await complete("owner", "zzz") == []
    assert "lighthouse" in await complete("repo", "light", owner="northwind")
    paths = await complete("path", "src/", owner="northwind", repo="lighthouse")
    assert paths and all(p.startswith("src/") for p in paths)
    assert ".env" not in await complete("path", "", owner="northwind", repo="lighthouse")
    refs = await complete("ref", "v", owner="northwind", repo="lighthouse")
    assert "v1.0.0" in refs
    assert await complete("path", "", owner="nobody", repo="nothing") == []
    code, reply = await modern(
        api, "completion/complete", ref={"type": "ref/prompt", "name": "x"}, argument={"name": "a"}
    )
    assert reply["error"]["code"] == -32602
