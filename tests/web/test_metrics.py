"""GET /metrics through the running server: scraped after real traffic (the Gitea tools over
the Gitea double), parsed with prometheus_client's own parser, and checked for what must
never be a label (keys, user input, repository names)."""

from __future__ import annotations

import hashlib
import json
import re

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aegis_tornado.assembly import build_context, gitea_tools
from aegis_tornado.auth.keys import KeyRing, parse_key
from aegis_tornado.metrics import observe_log_pipeline

from ..conftest import KEY, OTHER_KEY, UNKNOWN_KEY, body_json, with_settings
from ..hardening.process import ServerProcess
from ..sse_reader import SseReader
from ..support import initialize_request
from ..tools.conftest import GITEA_TOKEN, gitea  # noqa: F401  (fixture)

METRICS_KEY = hashlib.sha256(b"metrics-scraper").hexdigest()
SCRAPER = parse_key(METRICS_KEY, name="metrics")


@pytest.fixture
def tools_client(aegis_settings, gitea):
    client, tools = gitea_tools(
        aegis_settings, gitea.url, GITEA_TOKEN, public_url="https://git.example.com"
    )
    yield client, tools
    client.close()


@pytest.fixture
def registry(tools_client):
    return tools_client[1]


@pytest.fixture
def ctx(aegis_settings, logs, registry, tools_client):
    ctx = build_context(aegis_settings, KeyRing(aegis_settings.api_keys), registry)
    tools_client[0].observer = ctx.metrics.observe_gitea  # as assembly.run wires it
    observe_log_pipeline(logs.runtime)
    yield ctx
    observe_log_pipeline(None)


class Scrape:
    def __init__(self, text: str):
        self.text = text
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def label_values(self) -> set[str]:
        return {value for s in self.samples for value in s.labels.values()}


async def scrape(api, key: str = METRICS_KEY) -> Scrape:
    response = await api.request("/metrics", key=key)
    assert response.code == 200, response.body
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return Scrape(response.body.decode())


async def call(api, tool: str, key: str = KEY, **arguments) -> dict:
    response = await api.request(
        "/mcp/tool/call", "POST", key=key, json_body={"tool": tool, "arguments": arguments}
    )
    return {"code": response.code, **json.loads(response.body)}


@with_settings(metrics_key=SCRAPER)
@pytest.mark.gen_test(timeout=30)
async def test_counts_move_with_traffic_and_no_secret_or_repository_is_a_label(api):
    before = await scrape(api)
    assert before.value("aegis_tool_calls_total") == 0

    for _ in range(2):
        ok = await call(api, "get_repository", owner="alice", repo="notes")
        assert not ok.get("isError"), ok
    missing = await call(api, "get_repository", owner="alice", repo="supersecret-plans")
    assert missing.get("isError") is True
    denied = await call(api, "get_file_contents", owner="alice", repo="notes", path=".env")
    assert denied.get("isError") is True
    unknown = await call(api, "tool_named_by_attacker_ghp_abcdef", owner="x", repo="y")
    assert unknown["code"] == 404
    assert (await api.request("/mcp/tools", key=UNKNOWN_KEY)).code == 401
    assert (await api.request("/mcp/tools", key=None)).code == 401
    assert (await api.request("/mcp/tools", key=OTHER_KEY)).code == 200

    after = await scrape(api)
    tool_calls = "aegis_tool_calls_total"
    assert after.value(tool_calls, tool="get_repository", outcome="success") == 2
    assert after.value(tool_calls, tool="get_repository", outcome="error", reason="not_found") == 1
    assert (
        after.value(tool_calls, tool="get_file_contents", outcome="denied", reason="sensitive_path")
        == 1
    )
    assert after.value(tool_calls, tool="unknown", reason="unknown_tool") == 1
    assert after.value("aegis_tool_call_duration_seconds_count", tool="get_repository") == 3
    assert after.value("aegis_auth_total", outcome="invalid_api_key") == 1
    assert after.value("aegis_auth_total", outcome="missing_api_key") == 1
    assert after.value("aegis_auth_total", outcome="success") == 6
    assert (
        after.value(
            "aegis_http_requests_total", route="/mcp/tool/call", method="POST", status="200"
        )
        == 4
    )
    assert after.value("aegis_http_requests_total", route="/mcp/tools", status="401") == 2
    assert after.value("aegis_http_requests_total", route="/metrics", status="200") == 1
    assert after.value("aegis_gitea_requests_total", endpoint="repo", outcome="ok") >= 1
    assert after.value("aegis_gitea_requests_total", endpoint="repo", outcome="not_found") == 1
    assert after.value("aegis_gitea_request_duration_seconds_count", endpoint="repo") >= 2
    assert after.value("aegis_auth_limiter_tracked_ips") == 1
    assert after.value("aegis_auth_limiter_blocked_ips") == 0
    assert after.value("aegis_api_keys") == 2
    assert after.value("aegis_audit_lines_dropped_total") == 0
    assert any(s.name == "aegis_log_queue_depth" for s in after.samples)

    # Nothing a caller typed, no key and no repository name is anywhere in the exposition.
    for secret in (KEY, OTHER_KEY, UNKNOWN_KEY, METRICS_KEY, KEY[:8], METRICS_KEY[:8]):
        assert secret not in after.text
    for name in ("alice", "notes", "supersecret", "ghp_", "attacker", ".env"):
        assert name not in after.text, name
    assert not any(
        "/" in v and v.count("/") == 1 and not v.startswith("/") for v in after.label_values()
    )

    # The metrics live in the server's own registry, never the process-wide default one.
    assert prometheus_client.REGISTRY.get_sample_value("aegis_api_keys") is None


@with_settings(metrics_key=SCRAPER)
@pytest.mark.gen_test(timeout=30)
async def test_the_metrics_key_and_only_it_opens_metrics(api, logs):
    refused = await api.request("/metrics", key=None)
    assert refused.code == 401
    assert "metrics key" in body_json(refused)["message"]
    # An API key is not a metrics key, and the metrics key opens nothing else.
    assert (await api.request("/metrics", key=KEY)).code == 401
    assert (await api.request("/mcp/tools", key=METRICS_KEY)).code == 401
    reasons = [r["reason"] for r in logs.audit("access_denied")]
    assert reasons == ["missing_metrics_key", "invalid_metrics_key", "invalid_api_key"]
    assert (await api.request("/metrics", key=METRICS_KEY)).code == 200
    assert METRICS_KEY not in logs.audit_text() + logs.stdout_text()


@pytest.mark.gen_test(timeout=30)
async def test_metrics_are_off_by_default(api):
    response = await api.request("/metrics", key=KEY)
    assert response.code == 404
    assert b"aegis_" not in response.body


@with_settings(metrics_key=SCRAPER, metrics_repo_labels=True)
@pytest.mark.gen_test(timeout=30)
async def test_repository_labels_only_when_opted_in_and_only_for_found_repositories(api):
    await call(api, "get_repository", owner="alice", repo="notes")
    await call(api, "get_repository", owner="alice", repo="typed-by-a-caller")
    after = await scrape(api)
    assert after.value("aegis_gitea_repository_requests_total", repository="alice/notes") >= 1
    assert "typed-by-a-caller" not in after.text


@with_settings(metrics_key=SCRAPER)
@pytest.mark.gen_test(timeout=30)
async def test_sessions_and_streams_are_gauges(api, base_url):
    stream = await SseReader.open(
        base_url + "/mcp/sse",
        headers={"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"},
    )
    try:
        assert (await stream.next())[0] == "endpoint"
        opened = await scrape(api)
        assert opened.value("aegis_event_streams_open") == 1
        assert opened.value("aegis_legacy_sse_sessions") == 1
        assert opened.value("aegis_http_requests_in_flight") >= 1
    finally:
        stream.close()
    init = await api.mcp(initialize_request())
    assert init.code == 200
    assert (await scrape(api)).value("aegis_mcp_sessions") == 1


def test_a_separate_metrics_port_serves_metrics_alone(tmp_path):
    import urllib.error
    import urllib.request

    server = ServerProcess(tmp_path, METRICS_PORT="0")
    try:
        line = next(r for r in server.records() if r.get("event") == "metrics_listening")
        metrics_url = f"http://127.0.0.1:{line['port']}"
        with urllib.request.urlopen(metrics_url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        assert any(f.name == "aegis_api_keys" for f in text_string_to_metric_families(text))
        # Nothing else on that port, and no /metrics on the main one.
        for url, key in ((metrics_url + "/mcp/tools", KEY), (server.base_url + "/metrics", KEY)):
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(request, timeout=10)
            assert info.value.code == 404
    finally:
        server.signal()
        assert server.wait(15) == 0


@with_settings(metrics_key=SCRAPER)
@pytest.mark.gen_test(timeout=30)
async def test_the_grafana_dashboard_queries_only_metrics_the_server_exports(api):
    from pathlib import Path

    await call(api, "get_repository", owner="alice", repo="notes")
    exported = {s.name for s in (await scrape(api)).samples}
    dashboard = json.loads(
        (Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text()
    )
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\baegis_[a-z_]+", target["expr"])
    }
    assert queried, "the dashboard queries nothing"
    assert queried <= exported, queried - exported


@pytest.mark.parametrize(
    "env, message",
    [
        ({"METRICS_PORT": "70000"}, "METRICS_PORT: must be between 0 and 65535"),
        ({"METRICS_KEY": "not-hex"}, "METRICS_KEY: is not hexadecimal"),
        ({"METRICS_KEY": "abcd"}, "METRICS_KEY: is too short"),
        ({"METRICS_REPO_LABELS": "perhaps"}, "METRICS_REPO_LABELS: must be true or false"),
    ],
)
def test_metrics_settings_are_checked_at_start_up(env, message):
    from aegis_tornado.settings import ConfigError, load_settings

    with pytest.raises(ConfigError) as info:
        load_settings(
            environ={
                "GITEA_URL": "http://127.0.0.1:9",
                "GITEA_TOKEN": "t0k",
                "MCP_API_KEYS": KEY,
                **env,
            }
        )
    assert str(info.value).startswith(message)
    assert "not-hex" not in str(info.value)


def test_metrics_settings_parse():
    from aegis_tornado.settings import load_settings

    settings = load_settings(
        environ={
            "GITEA_URL": "http://127.0.0.1:9",
            "GITEA_TOKEN": "t0k",
            "MCP_API_KEYS": KEY,
            "METRICS_PORT": "9464",
            "METRICS_KEY": METRICS_KEY,
            "METRICS_REPO_LABELS": "true",
        }
    )
    assert settings.metrics_port == 9464 and settings.metrics_repo_labels is True
    assert settings.metrics_key is not None
    assert settings.metrics_key.digest == hashlib.sha256(METRICS_KEY.encode()).hexdigest()
    assert METRICS_KEY not in repr(settings)
    assert (
        load_settings(
            environ={"GITEA_URL": "http://x", "GITEA_TOKEN": "t0k", "MCP_API_KEYS": KEY}
        ).metrics_port
        is None
    )
