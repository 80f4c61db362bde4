"""The log pipeline under abuse: no key in any line, whatever shape it arrives in, and no failure
of the audit file can silence the log.

Runtime disk-full through the real process is in test_audit_disk.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import os

import pytest
import structlog

from aegis_tornado.logs import SecretScrubber, configure_logging

from ..conftest import KEY
from .conftest import RawConnection

DIGEST = hashlib.sha256(KEY.encode()).hexdigest()


@pytest.mark.parametrize(
    "text",
    [
        f"'Bearer\\x0b{KEY}'",  # repr of a vertical tab: hex digits glued to the key
        f"\\x0c{KEY}\\xab",
        f"0x{KEY}",
        f"{KEY}deadbeef",
        f"abc{KEY.upper()}",
        f"cafe{KEY}cafe{KEY}",
    ],
)
def test_a_key_glued_to_other_hex_digits_is_still_redacted(text):
    """Was: the scrubber hashed whole hex runs only, so 'Bearer\\x0b<key>' (Tornado's repr of a
    malformed Authorization header) reached the log with the key in clear."""
    cleaned = SecretScrubber([DIGEST])(text)
    assert KEY not in cleaned and KEY.upper() not in cleaned and "[REDACTED]" in cleaned


def test_ordinary_hex_stays_readable_and_giant_runs_are_withheld():
    scrub = SecretScrubber([DIGEST])
    sha = "a" * 40
    assert scrub(f"commit {sha} and {'b' * 64}") == f"commit {sha} and {'b' * 64}"
    assert scrub("f" * 5000) == "[REDACTED]"  # bounded work: never searched window by window


@pytest.mark.parametrize(
    "raw_header",
    [
        b"Authorization: Bearer\x0b" + KEY.encode(),
        b"Authorization: Bearer " + KEY.encode() + b"\x00",
        b"X-Key: " + KEY.encode() + b"\x7f",
        b"Authorization: Bearer \x1b" + KEY.encode(),
    ],
)
@pytest.mark.gen_test
async def test_malformed_headers_holding_a_key_never_reach_the_log(api, port, logs, raw_header):
    """Was: Tornado logs 'Malformed HTTP message ...: Invalid header value <repr>' with the raw
    header; the pipeline now withholds quoted raw input from Tornado's lines."""
    async with RawConnection(port) as conn:
        await conn.send(b"GET /mcp/tools HTTP/1.1\r\nHost: x\r\n" + raw_header + b"\r\n\r\n")
        status, _, _ = await conn.response()
        assert status in (None, 400)
    text = logs.stdout_text()
    assert "Malformed HTTP message" in text and "[withheld]" in text
    assert KEY not in text and KEY[:16] not in text


def test_a_full_disk_then_a_new_file_keeps_every_line_on_stdout_and_resumes_the_file(tmp_path):
    """Was: when the audit path moved (logrotate) while the old file could not flush (disk
    full), WatchedFileHandler raised out of emit(), which killed the thread that writes every
    log line: stdout went silent and the queue grew without bound."""
    link = tmp_path / "audit.log"
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    os.symlink(first, link)
    stream = io.StringIO()
    runtime = configure_logging("info", str(link), stream=stream, cache_loggers=False)
    audit = structlog.get_logger("aegis.audit")
    try:
        audit.info("tool_call", n=1)
        runtime.flush()
        os.unlink(link)
        os.symlink("/dev/full", link)  # the disk fills up
        for n in (2, 3):
            audit.info("tool_call", n=n)
        runtime.flush()
        os.unlink(link)
        os.symlink(second, link)  # rotated onto a disk with room
        for n in (4, 5):
            audit.info("tool_call", n=n)
        runtime.flush()
        assert runtime.writing()
    finally:
        runtime.stop()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["n"] for line in lines if line["event"] == "tool_call"] == [1, 2, 3, 4, 5]
    events = [line["event"] for line in lines]
    assert events.index("audit_log_write_failed") < events.index("audit_log_write_recovered")
    assert [json.loads(line)["n"] for line in second.read_text().splitlines()] == [4, 5]


def test_an_output_that_raises_does_not_stop_the_others(tmp_path):
    """A broken stdout (closed pipe, full tty) must not cost the audit file its lines, nor
    kill the thread that writes every line."""

    class Broken(io.StringIO):
        def write(self, text):
            raise RuntimeError("broken output")

    runtime = configure_logging(
        "info", str(tmp_path / "audit.log"), stream=Broken(), cache_loggers=False
    )
    try:
        structlog.get_logger("aegis.audit").info("tool_call", n=1)
        runtime.flush()
        structlog.get_logger("aegis.audit").info("tool_call", n=2)
        runtime.flush()
        assert runtime.writing()
    finally:
        runtime.stop()
    lines = (tmp_path / "audit.log").read_text().splitlines()
    assert [json.loads(line)["n"] for line in lines] == [1, 2]
