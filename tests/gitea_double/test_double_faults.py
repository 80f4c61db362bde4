"""Fault injection (in process and over the control endpoint), the runner and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.iostream import StreamClosedError

from aegis_tornado.gitea_double import (
    DEMO_TOKEN,
    Faults,
    make_double_app,
    start_double,
    stop_double,
)

LH = "/api/v1/repos/northwind/lighthouse"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.gen_test
async def test_status_fault_for_the_next_n_requests_then_recovery(api, app):
    app.faults.add("status", status=503, times=2, path="/version")
    assert (await api.get("/api/v1/version")).code == 503
    assert (await api.get(LH)).code == 200  # other paths unaffected
    assert (await api.get("/api/v1/version")).code == 503
    assert (await api.get("/api/v1/version")).code == 200
    assert app.faults.active == []


@pytest.mark.gen_test
async def test_status_fault_body_is_gitea_shaped_or_custom(api, app):
    app.faults.add("status", status=500, times=1)
    body = json.loads((await api.get(LH)).body)
    assert body["message"] == "" and body["url"].endswith("/api/swagger")
    app.faults.add("status", status=502, body="<html>Bad Gateway</html>", times=1)
    assert (await api.get(LH)).body == b"<html>Bad Gateway</html>"


@pytest.mark.gen_test
async def test_body_faults(api, app):
    good = (await api.get(f"{LH}/issues")).body
    app.faults.add("malformed", times=1)
    with pytest.raises(ValueError):
        json.loads((await api.get(f"{LH}/issues")).body)
    app.faults.add("truncated", times=1)
    truncated = await api.get(f"{LH}/issues")
    assert (
        truncated.code == 200
        and good.startswith(truncated.body)
        and len(truncated.body) < len(good)
    )
    assert int(truncated.headers["Content-Length"]) == len(truncated.body)
    app.faults.add("cut", times=1)
    with pytest.raises((StreamClosedError, HTTPClientError, OSError)):
        await AsyncHTTPClient().fetch(
            api.root + f"{LH}/issues", headers={"Authorization": f"token {DEMO_TOKEN}"}
        )


@pytest.mark.gen_test
async def test_mangle_fault_keeps_the_shape_and_changes_the_insides(api, app):
    good = json.loads((await api.get(f"{LH}/issues")).body)
    app.faults.add("mangle", seed=7, times=2)
    first = json.loads((await api.get(f"{LH}/issues")).body)
    again = json.loads((await api.get(f"{LH}/issues")).body)
    assert first == again != good  # the same seed, the same damage
    assert isinstance(first, list) and len(first) == len(good)
    assert all(isinstance(item, dict) for item in first)
    app.faults.add("mangle", seed=8, times=1)
    assert json.loads((await api.get(f"{LH}/issues")).body) != first


@pytest.mark.gen_test
async def test_huge_fault_declares_its_size(api, app):
    app.faults.add("huge", size=2 * 1024 * 1024, times=1)
    response = await api.get(LH)
    assert int(response.headers["Content-Length"]) == len(response.body) > 2_000_000
    assert isinstance(json.loads(response.body), list)


@pytest.mark.gen_test
async def test_disconnect_fault(api, app, double):
    app.faults.add("disconnect", times=1)
    with pytest.raises((StreamClosedError, HTTPClientError, OSError)):
        await AsyncHTTPClient().fetch(api.root + LH)
    assert double.requests[-1].status == 0 and double.in_flight == 0


@pytest.mark.gen_test
async def test_slow_and_hang(api, app, double):
    app.faults.add("slow", delay=0.2, times=1)
    started = time.monotonic()
    assert (await api.get("/api/v1/version")).code == 200
    assert time.monotonic() - started >= 0.2
    app.faults.add("hang", delay=0.3, times=1)
    started = time.monotonic()
    assert (await api.get("/api/v1/version")).code == 200  # answers once the hang ends
    assert time.monotonic() - started >= 0.3
    app.faults.add("hang", times=1)  # 30 s unless released
    pending = asyncio.ensure_future(api.get("/api/v1/version"))
    await asyncio.sleep(0.1)
    assert double.in_flight == 1
    app.faults.release()
    assert (await pending).code == 200


@pytest.mark.gen_test
async def test_hang_ends_when_the_client_hangs_up(api, app, double):
    app.faults.add("hang", delay=30)
    with pytest.raises(HTTPClientError):
        await AsyncHTTPClient().fetch(api.root + LH, request_timeout=0.2)
    await asyncio.sleep(0.1)
    assert double.in_flight == 0


@pytest.mark.gen_test
async def test_concurrency_counters(api, app, double):
    app.faults.add("slow", delay=0.2)
    await asyncio.gather(*(api.get("/api/v1/version") for _ in range(4)))
    assert double.max_in_flight == 4 and double.in_flight == 0
    double.reset_stats()
    assert double.max_in_flight == 0


def test_fault_validation():
    faults = Faults()
    for kind, options in [
        ("explode", {}),
        ("redirect", {}),
        ("status", {"times": 0}),
        ("slow", {"colour": "red"}),
    ]:
        with pytest.raises(ValueError):
            faults.add(kind, **options)
    hang = faults.add("hang")
    assert hang.delay == 30 and faults.add("status").status == 500
    assert faults.remove(hang.id) and not faults.remove(hang.id)


# -- control endpoint --------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_control_endpoint(api, double):
    created = await api.json(
        "/__double__/faults",
        None,
        expect=201,
        method="POST",
        body={"kind": "status", "status": 502, "times": 1, "path": "/version"},
    )
    assert created["kind"] == "status" and created["times"] == 1
    listed = await api.json("/__double__/faults", None)
    assert [f["id"] for f in listed["faults"]] == [created["id"]]
    assert (await api.get("/api/v1/version")).code == 502
    assert (await api.get("/api/v1/version")).code == 200
    bad = await api.get("/__double__/faults", None, method="POST", body={"kind": "explode"})
    assert bad.code == 400
    hang = await api.json(
        "/__double__/faults", None, expect=201, method="POST", body={"kind": "hang"}
    )
    assert (await api.get(f"/__double__/faults/{hang['id']}", None, method="DELETE")).code == 204
    assert (await api.get("/__double__/faults/999", None, method="DELETE")).code == 404
    await api.json(
        "/__double__/faults", None, expect=201, method="POST", body={"kind": "slow", "delay": 0.01}
    )
    assert (await api.get("/__double__/faults", None, method="DELETE")).code == 204
    assert double.faults.active == []
    recorded = (await api.json("/__double__/requests", None))["requests"]
    assert [r["path"] for r in recorded] == [
        "/api/v1/version",
        "/api/v1/version",
    ]  # control calls excluded
    assert recorded[0]["auth"] == "header" and recorded[0]["status"] == 502
    stats = await api.json("/__double__/stats", None)
    assert stats["requests"] == 2 and stats["in_flight"] == 0
    assert (await api.get("/__double__/requests", None, method="DELETE")).code == 204
    assert double.requests == []


@pytest.mark.gen_test
async def test_control_endpoint_is_off_by_default(io_loop):
    server, port, app = await start_double()
    try:
        http = AsyncHTTPClient()
        response = await http.fetch(
            f"http://127.0.0.1:{port}/__double__/faults",
            method="POST",
            body="{}",
            raise_error=False,
        )
        assert response.code in (404, 405)
        response = await http.fetch(
            f"http://127.0.0.1:{port}/__double__/requests", raise_error=False
        )
        assert response.code == 404
        version = await http.fetch(f"http://127.0.0.1:{port}/api/v1/version")
        assert json.loads(version.body) == {"version": "1.27.0"}
        assert app.double.requests[-1].path == "/api/v1/version"
    finally:
        await stop_double(server, app)


@pytest.mark.gen_test(timeout=10)
async def test_command_line_runner():
    env = dict(
        os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aegis_tornado.gitea_double",
            "--port",
            "0",
            "--token",
            "cli-token",
            "--control",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
        assert "listening on http://127.0.0.1:" in line
        url = line.split("listening on ", 1)[1].split()[0].rstrip("/")

        def fetch():
            request = urllib.request.Request(
                url + "/api/v1/user", headers={"Authorization": "token cli-token"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())

        assert (await asyncio.get_running_loop().run_in_executor(None, fetch))[
            "login"
        ] == "aegis-bot"
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_make_double_app_with_a_sub_path():
    app = make_double_app(prefix="/gitea/")
    assert app.settings["gitea_prefix"] == "/gitea"
