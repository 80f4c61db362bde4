"""SIGHUP reloads keys and scopes from the YAML file, as a real process: a new key works at
once, a removed key is refused, an open event stream survives, and a bad file keeps the old
keys with one log line."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
import sys
import threading
import time

import pytest
from tornado.httpclient import AsyncHTTPClient

from .conftest import KEY, OTHER_KEY
from .hardening.process import REPO, clean_env
from .sse_reader import SseReader

NEW_KEY = hashlib.sha256(b"reload-new-key").hexdigest()


def keys_yaml(*entries: str) -> str:
    return "api_keys:\n" + "".join(f"  - {entry}\n" for entry in entries)


class ConfiguredServer:
    """The test tools' server (the real entry point) started with a YAML file and no keys in
    the environment, so the file is where the keys come from."""

    def __init__(self, tmp_path, config_text: str):
        self.config = tmp_path / "aegis.yaml"
        self.config.write_text(config_text)
        env = clean_env(
            AEGIS_CONFIG=str(self.config),
            GITEA_URL="http://127.0.0.1:9",
            GITEA_TOKEN="t0k",
            AUDIT_LOG_PATH=str(tmp_path / "audit.log"),
            SSE_KEEPALIVE="0.2",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.hardening.serve_test_tools", "--port", "0"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.port: int | None = None
        listening = threading.Event()

        def read() -> None:
            for line in self.proc.stdout:
                self.lines.append(line)
                if self.port is None and '"listening"' in line:
                    self.port = json.loads(line)["port"]
                    listening.set()

        threading.Thread(target=read, daemon=True).start()
        if not listening.wait(20):
            self.proc.kill()
            raise AssertionError(f"no 'listening' line: {self.proc.stderr.read()[:2000]}")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events(self, name: str) -> list[dict]:
        records = [json.loads(line) for line in list(self.lines) if line.strip()]
        return [r for r in records if r.get("event") == name]

    async def hup_and_wait(self, event: str) -> dict:
        before = len(self.events(event))
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while len(self.events(event)) == before:
            assert time.monotonic() < deadline, f"no {event} line after SIGHUP"
            await asyncio.sleep(0.02)
        return self.events(event)[-1]

    async def status(self, key: str) -> int:
        response = await AsyncHTTPClient().fetch(
            self.base_url + "/mcp/tools",
            headers={"Authorization": f"Bearer {key}"},
            raise_error=False,
        )
        return response.code

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def server(tmp_path):
    process = ConfiguredServer(
        tmp_path, keys_yaml(f"{{key: {KEY}, name: primary}}", f"{{key: {OTHER_KEY}}}")
    )
    yield process
    process.stop()


@pytest.mark.gen_test(timeout=60)
async def test_sighup_applies_new_keys_and_scopes_without_dropping_streams(server):
    assert await server.status(KEY) == 200
    assert await server.status(OTHER_KEY) == 200
    assert await server.status(NEW_KEY) == 401
    stream = await SseReader.open(
        server.base_url + "/mcp/sse",
        headers={"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"},
    )
    event, endpoint = await stream.next()
    assert event == "endpoint"

    # OTHER_KEY removed, NEW_KEY added with a scope of one tool.
    server.config.write_text(
        keys_yaml(f"{{key: {KEY}, name: primary}}", f"{{key: {NEW_KEY}, tools: [echo]}}")
    )
    reloaded = await server.hup_and_wait("config_reloaded")
    assert reloaded["keys"] == 2 and reloaded["scoped_keys"] == 1
    assert reloaded.get("restart_needed_for") is None
    assert await server.status(OTHER_KEY) == 401
    assert await server.status(KEY) == 200
    listed = await AsyncHTTPClient().fetch(
        server.base_url + "/mcp/tools", headers={"Authorization": f"Bearer {NEW_KEY}"}
    )
    assert [t["name"] for t in json.loads(listed.body)["tools"]] == ["echo"]

    # The stream opened before the reload still carries replies.
    posted = await AsyncHTTPClient().fetch(
        server.base_url + endpoint,
        method="POST",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        body=json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 5,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "still here"}},
            }
        ),
        raise_error=False,
    )
    assert posted.code == 202, posted.body
    reply = await stream.next_json(timeout=10)
    assert reply["id"] == 5 and "still here" in reply["result"]["content"][0]["text"]

    # A bad file keeps the keys in force and costs one line.
    server.config.write_text("api_keys: [\n  unclosed")
    failed = await server.hup_and_wait("config_reload_failed")
    assert "YAML syntax error" in failed["error"] and failed["keys_kept"] == 2
    server.config.write_text(keys_yaml("{key: abc123}"))
    failed = await server.hup_and_wait("config_reload_failed")
    assert "too short" in failed["error"]
    # Scopes are built after the file loads: a bad one fails the reload just the same.
    server.config.write_text(keys_yaml(f"{{key: {KEY}, tools: get_repository}}"))
    failed = await server.hup_and_wait("config_reload_failed")
    assert "key #1 tools must be a list" in failed["error"] and failed["keys_kept"] == 2
    server.config.write_text(keys_yaml(KEY) + "oauth_scopes: {users: {alice: {repos: []}}}\n")
    failed = await server.hup_and_wait("config_reload_failed")
    assert "oauth_scopes" in failed["error"] and "repos is empty" in failed["error"]
    server.config.write_text("api_keys: []\n")
    failed = await server.hup_and_wait("config_reload_failed")
    assert "no keys" in failed["error"] or "No API keys" in failed["error"]
    assert len(server.events("config_reload_failed")) == 5
    assert await server.status(KEY) == 200 and await server.status(NEW_KEY) == 200
    assert await server.status(OTHER_KEY) == 401
    assert server.proc.poll() is None
    stream.close()

    # No key, old or new, reached a log line.
    logged = "".join(server.lines)
    for key in (KEY, OTHER_KEY, NEW_KEY):
        assert key not in logged
    assert server.stop() == 0


@pytest.mark.gen_test(timeout=60)
async def test_settings_that_need_a_restart_are_named_not_applied(server):
    server.config.write_text(
        keys_yaml(f"{{key: {KEY}, name: primary, tools: [echo, ecoh]}}")
        + "max_result_bytes: 5000\n"
    )
    reloaded = await server.hup_and_wait("config_reloaded")
    assert reloaded["restart_needed_for"] == ["max_result_bytes"]
    assert await server.status(OTHER_KEY) == 401
    # A scope naming a tool that does not exist is a typo the operator hears about.
    [typo] = server.events("key_scope_names_unknown_tools")
    assert typo["key"] == "primary" and typo["tools"] == ["ecoh"]
