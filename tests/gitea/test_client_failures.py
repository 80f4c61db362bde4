"""Failure handling: each Gitea answer or outage maps to one typed error; retries, deadline, caps.

Uses the double's fault injection (``app.faults``) and, for refused connections, a closed port.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time

import pytest
from structlog.testing import capture_logs

from aegis_tornado.gitea import (
    GiteaAuthError,
    GiteaBadRequest,
    GiteaBadResponse,
    GiteaClient,
    GiteaEmptyRepository,
    GiteaError,
    GiteaNotFound,
    GiteaUnavailable,
)

from .conftest import NO_ISSUE_SCOPE_TOKEN, TOKEN

LH = {"owner": "northwind", "repo": "lighthouse"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- HTTP status mapping ----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_404_for_an_invisible_private_repository(client, double):
    for owner, repo in (
        ("carol", "incident-response"),
        ("northwind", "hr-payroll"),
        ("nobody", "nothing"),
    ):
        with pytest.raises(GiteaNotFound) as caught:
            await client.get_json("repo", owner=owner, repo=repo)
        err = caught.value
        assert err.status == 404 and err.path == f"/repos/{owner}/{repo}"
        assert "not visible to the server's Gitea account" in str(err)
    assert len(double.requests) == 3  # a 404 is final, never retried


@pytest.mark.gen_test
async def test_401_wrong_token(make_client):
    client = make_client("wrong-token-value")
    with pytest.raises(GiteaAuthError) as caught:
        await client.get_json("repo", **LH)
    assert caught.value.status == 401
    assert "rejected the server's access token" in str(caught.value)
    assert "wrong-token-value" not in str(caught.value) + repr(caught.value)


@pytest.mark.gen_test
async def test_401_without_a_token(make_client):
    with pytest.raises(GiteaAuthError) as caught:
        await make_client(token=None).get_json("user")
    assert caught.value.status == 401 and "no Gitea token configured" in str(caught.value)


@pytest.mark.gen_test
async def test_403_missing_scope_says_which(make_client):
    client = make_client(NO_ISSUE_SCOPE_TOKEN)
    assert (await client.get_json("repo", **LH))["name"] == "lighthouse"
    with pytest.raises(GiteaAuthError) as caught:
        await client.get_page("issues", **LH)
    err = caught.value
    assert err.status == 403
    assert "missing a required scope" in str(err) and "required=[read:issue]" in str(err)


@pytest.mark.gen_test
async def test_409_empty_repository(client):
    with pytest.raises(GiteaEmptyRepository) as caught:
        await client.get_page("commits", owner="northwind", repo="empty-sandbox")
    assert caught.value.status == 409 and "repository is empty" in str(caught.value)
    repo = await client.get_json("repo", owner="northwind", repo="empty-sandbox")
    assert repo["empty"] is True
    with pytest.raises(GiteaNotFound):
        await client.get_json("contents_root", owner="northwind", repo="empty-sandbox")


@pytest.mark.gen_test
async def test_400_and_422_are_bad_requests(client):
    with pytest.raises(GiteaBadRequest) as caught:
        await client.get_tree("northwind", "lighthouse", "no-such-ref")
    assert caught.value.status == 400 and "object does not exist" in str(caught.value)
    with pytest.raises(GiteaBadRequest) as caught:
        await client.get_page("repo_search", params={"sort": "vibes"})
    assert caught.value.status == 422 and "Invalid sort mode" in str(caught.value)


@pytest.mark.gen_test
async def test_500_is_unavailable_and_not_retried(client, app, double):
    app.faults.add("status", status=500)
    with pytest.raises(GiteaUnavailable) as caught:
        await client.get_json("repo", **LH)
    assert caught.value.status == 500 and str(caught.value).startswith("Gitea unavailable")
    assert caught.value.retryable
    assert len(double.requests) == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_are_retried_until_the_fault_clears(client, app, double, status):
    app.faults.add("status", status=status, times=2)
    repo = await client.get_json("repo", **LH)
    assert repo["name"] == "lighthouse"
    assert [r.status for r in double.requests] == [status, status, 200]


@pytest.mark.gen_test
async def test_gateway_errors_give_up_after_the_retries(make_client, app, double):
    client = make_client(retries=1)
    app.faults.add("status", status=503, body="<html>503 Service Unavailable</html>")
    with pytest.raises(GiteaUnavailable) as caught:
        await client.get_json("repo", **LH)
    assert caught.value.status == 503 and "after 2 attempt(s)" in str(caught.value)
    assert len(double.requests) == 2


@pytest.mark.gen_test
async def test_retry_after_is_honoured_when_it_fits_the_deadline(make_client, app, double):
    client = make_client(timeout=1.0, retries=1)  # deadline about 2.1 s
    app.faults.add("status", status=503, times=1, headers={"Retry-After": "1"})
    started = time.monotonic()
    assert (await client.get_json("version"))["version"] == "1.27.0"
    assert time.monotonic() - started >= 1.0
    app.faults.add("status", status=503, times=1, headers={"Retry-After": "120"})
    started = time.monotonic()
    with pytest.raises(GiteaUnavailable):
        await client.get_json("version")
    assert time.monotonic() - started < 0.5  # waiting 120 s could never fit: give up at once
    assert [r.status for r in double.requests] == [503, 200, 503]


@pytest.mark.gen_test
async def test_no_retries_when_retries_is_zero(make_client, app, double):
    app.faults.add("status", status=502)
    with pytest.raises(GiteaUnavailable):
        await make_client(retries=0).get_json("version")
    assert len(double.requests) == 1


# -- broken bodies ----------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("kind", ["malformed", "truncated"])
async def test_broken_json_is_a_bad_response_and_not_retried(client, app, double, kind):
    app.faults.add(kind, path="/issues")
    with pytest.raises(GiteaBadResponse) as caught:
        await client.get_page("issues", **LH)
    assert "not valid JSON" in str(caught.value)
    assert isinstance(caught.value.__cause__, ValueError)
    assert len(double.requests) == 1
    assert (await client.get_json("repo", **LH))["name"] == "lighthouse"  # other paths unaffected


@pytest.mark.gen_test
async def test_connection_dropped_mid_body_is_retried(client, app, double):
    app.faults.add("cut", times=1)
    repo = await client.get_json("repo", **LH)
    assert repo["name"] == "lighthouse" and len(double.requests) == 2
    app.faults.add("cut")
    with pytest.raises(GiteaUnavailable, match="dropped"):
        await client.get_json("repo", **LH)


@pytest.mark.gen_test
async def test_wrong_shape_is_a_bad_response(client, app):
    app.faults.add("status", status=200, body='{"message": "not a list"}', times=1)
    with pytest.raises(GiteaBadResponse, match="unexpected shape"):
        await client.get_page("issues", **LH)
    app.faults.add("status", status=200, body='{"ok": false, "data": []}', times=1)
    with pytest.raises(GiteaBadResponse, match="unexpected shape"):
        await client.get_page("repo_search")


@pytest.mark.gen_test
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_huge_body_is_refused_without_reading_it_all(make_client, app, chunked):
    client = make_client(max_response_bytes=256 * 1024)
    app.faults.add("huge", size=64 * 1024 * 1024, chunked=chunked)
    started = time.monotonic()
    with pytest.raises(GiteaBadResponse) as caught:
        await client.get_page("issues", **LH)
    assert "larger than the 262144-byte limit" in str(caught.value)
    assert time.monotonic() - started < 2.0  # 64 MiB were not downloaded


@pytest.mark.gen_test
async def test_a_real_answer_over_the_cap_is_refused(make_client):
    client = make_client(max_response_bytes=100_000)
    with pytest.raises(GiteaBadResponse):
        await client.get_json(
            "contents", filepath="data/sample-metrics.csv", **LH
        )  # ~160 KB base64
    assert (await client.get_json("contents", filepath="README.md", **LH))["type"] == "file"


# -- time: timeouts, hangs, the deadline, refused connections --------------------------------


@pytest.mark.gen_test
async def test_hang_times_out_and_is_retried_within_the_deadline(make_client, app, double):
    client = make_client(timeout=0.3, retries=1)
    app.faults.add("hang", delay=10)
    started = time.monotonic()
    with pytest.raises(GiteaUnavailable) as caught:
        await client.get_json("repo", **LH)
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < client.deadline + 0.5, elapsed
    assert "no answer" in str(caught.value) and "after 2 attempt(s)" in str(caught.value)
    assert len(double.requests) == 2


@pytest.mark.gen_test
async def test_no_retry_starts_that_could_not_finish_before_the_deadline(make_client, app, double):
    client = make_client(timeout=0.3, retries=3, deadline=0.5)
    app.faults.add("hang", delay=10)
    started = time.monotonic()
    with pytest.raises(GiteaUnavailable):
        await client.get_json("repo", **LH)
    assert time.monotonic() - started < 0.5 + 0.3
    assert len(double.requests) == 1


@pytest.mark.gen_test
async def test_a_slow_drip_is_cut_at_the_deadline(make_client, app, double):
    # Every read beats the read timeout; only the call's deadline can stop this answer.
    client = make_client(timeout=0.5, retries=2, deadline=0.8)
    app.faults.add("drip", delay=0.05, size=1024 * 1024)
    started = time.monotonic()
    with pytest.raises(GiteaUnavailable, match="did not complete in time"):
        await client.get_json("repo", **LH)
    assert time.monotonic() - started < 1.2
    await asyncio.sleep(0.3)  # the worker thread noticed the deadline and hung up
    assert [r.status for r in double.requests] == [0]


@pytest.mark.gen_test
async def test_slow_headers_past_the_read_timeout_are_a_timeout(make_client, app, double):
    client = make_client(timeout=0.3, retries=0)
    app.faults.add("slow", delay=0.6)
    with pytest.raises(GiteaUnavailable, match="no answer"):
        await client.get_json("repo", **LH)
    assert len(double.requests) == 1


@pytest.mark.gen_test
async def test_slow_but_in_time_succeeds(make_client, app):
    app.faults.add("slow", delay=0.2)
    assert (await make_client(timeout=1.0).get_json("version"))["version"] == "1.27.0"


@pytest.mark.gen_test
async def test_hang_released_when_the_fault_clears(make_client, app, double):
    client = make_client(timeout=2.0)
    app.faults.add("hang", delay=10)
    call = asyncio.ensure_future(client.get_json("version"))
    await asyncio.sleep(0.2)
    app.faults.clear()
    assert (await call)["version"] == "1.27.0"
    assert len(double.requests) == 1


@pytest.mark.gen_test
async def test_connection_refused(make_client):
    client = make_client(base_url=f"http://127.0.0.1:{_closed_port()}", retries=2)
    with capture_logs() as logs:
        with pytest.raises(GiteaUnavailable) as caught:
            await client.get_json("version")
    assert "connection refused" in str(caught.value) and "after 3 attempt(s)" in str(caught.value)
    attempts = [e["attempt"] for e in logs if e["event"] == "gitea.request"]
    assert attempts == [1, 2, 3]
    assert caught.value.__cause__ is not None


@pytest.mark.gen_test
async def test_server_disconnect_is_retried(client, app, double):
    app.faults.add("disconnect", times=2)
    assert (await client.get_json("version"))["version"] == "1.27.0"
    assert [r.status for r in double.requests] == [0, 0, 200]


# -- secrets, logs, concurrency, lifecycle ------------------------------------------------


@pytest.mark.gen_test
async def test_token_never_appears_in_errors_or_logs(make_client, app, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(timeout=0.3, retries=1, max_response_bytes=50_000)
    errors: list[GiteaError] = []
    scenarios = [
        ("status", {"status": 503}),
        ("status", {"status": 400, "body": json.dumps({"message": f"your token {TOKEN} is odd"})}),
        ("malformed", {}),
        ("huge", {"size": 1024 * 1024}),
        ("hang", {"delay": 5}),
        ("disconnect", {}),
        ("redirect", {"location": "http://other.example/x"}),
    ]
    with capture_logs() as logs:
        for kind, options in scenarios:
            app.faults.clear()
            app.faults.add(kind, **options)
            with pytest.raises(GiteaError) as caught:
                await client.get_page("issues", params={"q": "probe"}, **LH)
            errors.append(caught.value)
        app.faults.clear()
        with pytest.raises(GiteaAuthError) as caught:
            await make_client(TOKEN + "x").get_json("repo", **LH)
        errors.append(caught.value)
        refused = make_client(base_url=f"http://127.0.0.1:{_closed_port()}", retries=0)
        with pytest.raises(GiteaUnavailable) as caught:
            await refused.get_json("version")
        errors.append(caught.value)
    assert len(errors) == len(scenarios) + 2
    assert "[redacted]" in str(errors[1])
    assert any(e["event"] == "gitea.request" for e in logs)
    for entry in logs:
        assert TOKEN not in repr(entry) and "Authorization" not in repr(entry)
        if entry["event"] == "gitea.request":
            assert {"method", "endpoint", "status", "duration_ms", "attempt"} <= set(entry)
    for err in errors:
        chain = [err, err.__cause__, err.__context__]
        text = " ".join(f"{e!s} {e!r}" for e in chain if e is not None)
        assert TOKEN not in text
        assert "q=probe" not in f"{err!s}{err!r}" and "127.0.0.1" not in str(
            err
        )  # no query, no host
    assert TOKEN not in caplog.text
    assert any(r.name.startswith("urllib3") for r in caplog.records)  # the stdlib side was captured


@pytest.mark.gen_test
async def test_concurrency_is_bounded_by_the_pool(make_client, app, double):
    client = make_client(pool_size=3, timeout=5)
    app.faults.add("slow", delay=0.15)
    double.reset_stats()
    results = await asyncio.gather(*(client.get_json("repo", **LH) for _ in range(9)))
    assert len(results) == 9
    assert double.max_in_flight == 3


@pytest.mark.gen_test(timeout=30)
async def test_waiting_for_a_slot_counts_against_the_deadline(make_client, app, double):
    """Queued behind a slow Gitea, a call still ends within its own deadline (plus slack)."""
    client = make_client(pool_size=2, timeout=0.3, retries=0)
    app.faults.add("hang", delay=5)
    double.reset_stats()

    async def timed():
        started = time.monotonic()
        try:
            await client.get_json("repo", **LH)
        except GiteaUnavailable as error:
            return time.monotonic() - started, str(error)
        raise AssertionError("a hanging Gitea answered")

    outcomes = await asyncio.gather(*(timed() for _ in range(10)))
    assert all(seconds < client.deadline + 1.0 for seconds, _ in outcomes), outcomes
    assert double.max_in_flight <= 2
    assert any("connections were busy" in message for _, message in outcomes)
    app.faults.clear()
    assert (await client.get_json("repo", **LH))["name"] == "lighthouse"  # every slot came back


@pytest.mark.gen_test
async def test_a_call_cancelled_while_queued_takes_no_slot(make_client, app):
    client = make_client(pool_size=1, timeout=2)
    app.faults.add("hang", delay=10, times=1)
    first = asyncio.ensure_future(client.get_json("version"))
    await asyncio.sleep(0.1)
    queued = asyncio.ensure_future(client.get_json("version"))
    await asyncio.sleep(0.05)
    queued.cancel()
    first.cancel()
    for task in (queued, first):
        with pytest.raises(asyncio.CancelledError):
            await task
    app.faults.release()
    assert (await asyncio.wait_for(client.get_json("version"), 3))["version"] == "1.27.0"


@pytest.mark.parametrize(
    "endpoint, body",
    [
        ("branches", "[1, 2]"),
        ("branches", "[null]"),
        ("branches", '[{"name": "x"}, "y"]'),
        ("repo_search", '{"ok": true, "data": [[]]}'),
        ("contents_root", "[true]"),
    ],
)
@pytest.mark.gen_test
async def test_list_items_that_are_not_objects_are_a_bad_response(client, app, endpoint, body):
    app.faults.add("status", status=200, body=body)
    path = {} if endpoint == "repo_search" else LH
    with pytest.raises(GiteaBadResponse, match="unexpected shape"):
        await client.get_page(
            endpoint, **path
        ) if endpoint != "contents_root" else await client.get_json(endpoint, **path)


@pytest.mark.gen_test
async def test_tree_entries_that_are_not_objects_are_a_bad_response(client, app):
    app.faults.add("status", status=200, body='{"sha": "x", "tree": ["a"]}')
    with pytest.raises(GiteaBadResponse, match="unexpected shape"):
        await client.get_tree("northwind", "lighthouse", "main")


@pytest.mark.gen_test
async def test_the_event_loop_keeps_running_during_a_call(client, app):
    app.faults.add("slow", delay=0.3)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    try:
        await client.get_json("version")
    finally:
        task.cancel()
    assert ticks >= 15


@pytest.mark.gen_test
async def test_a_cancelled_call_frees_its_slot(make_client, app):
    client = make_client(pool_size=1, timeout=2)
    app.faults.add("hang", delay=10, times=1)
    call = asyncio.ensure_future(client.get_json("version"))
    await asyncio.sleep(0.1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    app.faults.release()
    assert (await asyncio.wait_for(client.get_json("version"), 3))["version"] == "1.27.0"


@pytest.mark.gen_test
async def test_closed_client_refuses_calls(make_client):
    client = make_client()
    client.close()
    client.close()  # idempotent
    with pytest.raises(RuntimeError):
        await client.get_json("version")


def test_client_offers_no_write_methods():
    public = {name for name in dir(GiteaClient) if not name.startswith("_")}
    assert public == {
        "base_url",
        "deadline",
        "close",
        "get_json",
        "get_page",
        "get_tree",
        "get_text",
    }
