"""The log pipeline: JSON lines, audit file routing, scrubbing, and write failures."""

from __future__ import annotations

import hashlib
import io
import json
import os

import structlog

from aegis_tornado.logs import SecretScrubber, configure_logging

KEY = "73bb1be4017875dc532cd855c009b11ce38343f7c786edeee13c5317b1a303be"


def test_scrubber_removes_configured_keys_tokens_and_credential_shapes():
    scrub = SecretScrubber([hashlib.sha256(KEY.encode()).hexdigest()], ["giteatoken123456"])
    text = (
        f"key {KEY} then /mcp/sse?session_id=1&api_key=whatever&x=1 "
        f"Authorization: Bearer abc.def token giteatoken123456 sha {'a' * 40}"
    )
    cleaned = scrub(text)
    assert KEY not in cleaned and "whatever" not in cleaned and "abc.def" not in cleaned
    assert "giteatoken123456" not in cleaned
    assert "a" * 40 in cleaned  # commit ids stay readable
    assert "api_key=[REDACTED]" in cleaned


def test_lines_are_json_with_timestamp_then_event_first(tmp_path):
    stream = io.StringIO()
    runtime = configure_logging(
        "info", str(tmp_path / "audit.log"), stream=stream, cache_loggers=False
    )
    try:
        structlog.get_logger("aegis.audit").info("api_authentication", status="success")
        structlog.get_logger("aegis.other").info("not_audit", detail=1)
        import logging

        logging.getLogger("tornado.general").warning("plain %s", "stdlib")
        runtime.flush()
    finally:
        runtime.stop()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["api_authentication", "not_audit", "plain stdlib"]
    for line in lines:
        assert list(line)[:2] == ["timestamp", "event"]
        assert line["timestamp"].endswith("Z")
    audit = [json.loads(line) for line in open(tmp_path / "audit.log")]
    assert [a["event"] for a in audit] == ["api_authentication"]


def test_audit_events_are_written_whatever_the_log_level(tmp_path):
    stream = io.StringIO()
    runtime = configure_logging(
        "critical", str(tmp_path / "audit.log"), stream=stream, cache_loggers=False
    )
    structlog.get_logger("aegis.audit").info("tool_call", tool="x")
    structlog.get_logger("aegis.http").info("chatter")
    runtime.stop()
    assert "tool_call" in open(tmp_path / "audit.log").read()
    assert "chatter" not in stream.getvalue()


def test_a_failing_audit_file_is_reported_and_stdout_keeps_the_lines(tmp_path):
    target = tmp_path / "real.log"
    link = tmp_path / "audit.log"
    os.symlink(target, link)
    stream = io.StringIO()
    runtime = configure_logging("info", str(link), stream=stream, cache_loggers=False)
    audit = structlog.get_logger("aegis.audit")
    try:
        audit.info("tool_call", n=1)
        runtime.flush()
        # The disk "fills up": the watched path now leads to a device that refuses writes.
        os.unlink(link)
        os.symlink("/dev/full", link)
        audit.info("tool_call", n=2)
        audit.info("tool_call", n=3)
        runtime.flush()
    finally:
        runtime.stop()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    alarms = [line for line in lines if line["event"] == "audit_log_write_failed"]
    assert alarms and alarms[0]["level"] == "critical"
    assert "No space left" in alarms[0]["error"]
    assert [line["n"] for line in lines if line["event"] == "tool_call"] == [1, 2, 3]


def test_a_writer_that_falls_behind_drops_lines_and_says_how_many(tmp_path, monkeypatch):
    """The queue is bounded: a stdout that blocks must not grow the process without bound."""
    import threading

    from aegis_tornado import logs

    monkeypatch.setattr(logs, "MAX_QUEUED_LINES", 10)
    release, blocked = threading.Event(), threading.Event()

    class Stuck(io.StringIO):
        def write(self, text):
            blocked.set()
            release.wait(10)
            return super().write(text)

    stream = Stuck()
    runtime = configure_logging(
        "info", str(tmp_path / "audit.log"), stream=stream, cache_loggers=False
    )
    audit = structlog.get_logger("aegis.audit")
    try:
        audit.info("tool_call", n=0)
        assert blocked.wait(5)  # the writer is stuck in stdout with line 0
        for n in range(1, 31):
            audit.info("tool_call", n=n)
        assert runtime.queue_depth() == 10 and runtime.dropped() == {"audit": 20, "other": 0}
        release.set()
        runtime.flush()
    finally:
        release.set()
        runtime.stop()
    written = [json.loads(line) for line in open(tmp_path / "audit.log")]
    assert [r["n"] for r in written if r["event"] == "tool_call"] == list(range(11))
    [dropped] = [r for r in written if r["event"] == "log_lines_dropped"]
    assert (dropped["audit_lines"], dropped["other_lines"], dropped["level"]) == (20, 0, "critical")
    assert "log_lines_dropped" in stream.getvalue()
    assert [r["seq"] for r in written] == list(range(1, len(written) + 1))  # still one chain
