"""Logging: structlog JSON lines to stdout, and audit events also to the audit file.

Every line is rendered (and scrubbed of secrets) in the thread that logs it, then handed to a
bounded queue; one writer thread does all the writing, so neither stdout nor the disk can block
the event loop. Our own structlog events go straight from structlog's logger to the queue
(``_QueueLogger``); stdlib records (Tornado, urllib3) are rendered the same way by the root
handler (``_ToWriter``). The writer chains every audit line onto the one before it
(``audit_chain``) and appends it to the audit file, which it reopens when logrotate moves it
(``WatchedFileHandler``'s rule). A write failure on the audit file (disk full, file gone
read-only) is reported loudly on stdout, which keeps receiving every audit line as written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import re
import stat
import sys
import threading
import time
from collections.abc import Iterable, MutableMapping
from datetime import datetime, timezone
from typing import Any

import structlog

from .audit_chain import ChainState, read_tail, state_at_start

AUDIT_LOGGER = "aegis.audit"

# Credentials that may be embedded in text handed to a logger: a query parameter, an
# Authorization header value, or a Gitea "token" header value.
_CREDENTIAL_PATTERNS = re.compile(
    r"(?P<name>api_key=|access_token=|token=|[Bb]earer\s+|[Tt]oken\s+|[Bb]asic\s+)"
    r"(?P<secret>[^\s&\"',;]+)"
)
_HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")
#: Hex runs longer than this are withheld whole: no log line needs one, and searching a longer
#: run for an embedded key would cost time quadratic in its length.
MAX_HEX_RUN = 128
REDACTED = "[REDACTED]"


class SecretScrubber:
    """Removes credentials from rendered log lines.

    Configured API keys are known only by their SHA-256 digests, so a long hex run is hashed and
    compared with them, and so is every stretch of it as long as a configured key, because a key
    may be glued to other hex digits (Python's repr writes a vertical tab before it as ``\x0b``).
    The Gitea token is held in plain text anyway (it is sent to Gitea), so it is matched
    literally. Credential-shaped substrings are removed whatever they contain.
    """

    def __init__(
        self,
        key_digests: Iterable[str] = (),
        literals: Iterable[str | None] = (),
        key_lengths: Iterable[int] = (),
    ):
        self.key_digests = frozenset(key_digests)
        self.key_lengths = tuple(sorted({64, *key_lengths}))
        self.literals = tuple(
            sorted({s for s in literals if s and len(s) >= 8}, key=len, reverse=True)
        )

    def __call__(self, text: str) -> str:
        for literal in self.literals:
            if literal in text:
                text = text.replace(literal, REDACTED)
        # Every credential shape holds one of these; most lines hold none (a quarter of the
        # cost of a line was this substitution finding nothing).
        if "=" in text or "earer" in text or "oken" in text or "asic" in text:
            text = _CREDENTIAL_PATTERNS.sub(lambda m: m.group("name") + REDACTED, text)
        if self.key_digests:
            text = _HEX_RUN.sub(self._redact_if_key, text)
        return text

    def _is_key(self, text: str) -> bool:
        return hashlib.sha256(text.encode()).hexdigest() in self.key_digests

    def _redact_if_key(self, match: re.Match) -> str:
        run = match.group(0)
        if len(run) > MAX_HEX_RUN:
            return REDACTED
        for candidate in {run, run.lower()}:
            if self._is_key(candidate):
                return REDACTED
            for width in self.key_lengths:
                for start in range(len(candidate) - width + 1):
                    if self._is_key(candidate[start : start + width]):
                        return REDACTED
        return run


_TIME_PREFIX: tuple[int, str] = (-1, "")


def _add_timestamp(_, __, event_dict: MutableMapping) -> MutableMapping:
    """``timestamp``: UTC, ISO 8601 with microseconds and a ``Z``, exactly as structlog's
    ``TimeStamper(fmt="iso", utc=True)`` writes it, but with the date and time formatted once
    per second rather than through a ``datetime`` per line (a sixth of a line's cost)."""
    global _TIME_PREFIX
    now = time.time()
    second = int(now)
    micro = int((now - second) * 1_000_000)
    cached = _TIME_PREFIX
    if cached[0] != second:
        cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _TIME_PREFIX = cached  # one reference swap: safe between threads
    event_dict["timestamp"] = f"{cached[1]}.{micro:06d}Z" if micro else f"{cached[1]}Z"
    return event_dict


def _json_fallback(value: Any) -> Any:
    """What structlog's JSONRenderer does with a value JSON has no type for."""
    try:
        return value.__structlog__()
    except AttributeError:
        return repr(value)


class _ScrubbingJSONRenderer:
    """The last step of every line: exception text, ``timestamp`` then ``event`` first (so grep
    patterns like ``api_authentication.*success`` match the event before any free-text field),
    JSON exactly as ``json.dumps`` writes it, then the scrubber. One step instead of three,
    with one encoder built once instead of one per line."""

    def __init__(self, scrubber: SecretScrubber):
        self.scrubber = scrubber
        self._encode = json.JSONEncoder(default=_json_fallback).encode

    def __call__(self, logger, name, event_dict) -> str:
        if "exc_info" in event_dict or "exception" in event_dict:
            event_dict = structlog.processors.format_exc_info(logger, name, event_dict)
        ordered = {
            "timestamp": event_dict.pop("timestamp", None),
            "event": event_dict.pop("event", None),
        }
        ordered.update(event_dict)
        return self.scrubber(self._encode(ordered))


_QUOTED = re.compile("b?'(?:[^'\\\\]|\\\\.)*'|b?\"(?:[^\"\\\\]|\\\\.)*\"")


class _WithholdRawInput(logging.Filter):
    """Tornado quotes what it could not parse ("Malformed HTTP message from ...: Invalid header
    value '...'"), and the header may be Authorization. Keep the reason, withhold the bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("tornado."):
            message = record.getMessage()
            withheld = _QUOTED.sub("[withheld]", message)
            if withheld != message:
                record.msg, record.args = withheld, None
        return True


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _AuditFile:
    """The audit file, appended to by the writer thread alone.

    Before each batch the path is looked up again; when it no longer names the open file
    (logrotate moved it, or it was deleted) the path is reopened: ``WatchedFileHandler``'s rule,
    checked once per batch instead of once per line. The chain continues across files: a new,
    empty file starts at ``seq`` 1 with ``prev`` naming the last line of the file before it.

    Lines are written unbuffered, a batch at a time, so a failed write leaves nothing pending
    and the next batch tries again; the failure is reported on ``alarm_stream``, at most every
    10 s, and so is the recovery.
    """

    def __init__(self, path: str, alarm_stream=None):
        self.path = path
        self._alarm_stream = alarm_stream
        self._last_alarm = 0.0
        self._failing = False
        self.failures = 0
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        #: The next write must first end a line left incomplete (a crash, a failed write).
        self._open_line = False
        self._fd = self._open()
        self.chain, self._open_line = state_at_start(path)

    def _open(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        info = os.fstat(fd)
        self._identity = (info.st_dev, info.st_ino)
        return fd

    def reopen_if_moved(self) -> None:
        try:
            info = os.stat(self.path)
            moved = (info.st_dev, info.st_ino) != self._identity
        except FileNotFoundError:
            moved = True
        except OSError:
            moved = self._fd is None
        if not moved and self._fd is not None:
            return
        self.close()
        try:
            self._fd = self._open()
        except OSError as error:
            self._failed(error)
            return
        # A fresh file starts at seq 1, anchored to the last line written before it. Any other
        # file (the link switched back to one already written) continues the running chain:
        # lines that never reached it then show as a gap, as they should.
        info = os.fstat(self._fd)
        if stat.S_ISREG(info.st_mode) and info.st_size == 0:
            self.chain = ChainState(1, self.chain.prev)
        self._open_line = not read_tail(self.path).complete

    def write(self, lines: list[str]) -> None:
        """Append chained lines; raise OSError if they could not all be written."""
        data = ("\n".join(lines) + "\n").encode("utf-8")
        if self._open_line:
            data = b"\n" + data
        if self._fd is None:
            raise OSError(0, "the audit file is not open")
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:])
        finally:
            # Part of a line reached the file: the next write starts on a line of its own.
            self._open_line = 0 < written < len(data) or (self._open_line and written == 0)

    def write_or_alarm(self, lines: list[str]) -> None:
        try:
            self.write(lines)
        except OSError as error:
            self._failed(error)
            return
        if self._failing:
            self._failing = False
            self._alarm("audit_log_write_recovered", "warning", None)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass

    def _failed(self, error: OSError) -> None:
        self.failures += 1
        self._failing = True
        now = time.monotonic()
        if now - self._last_alarm < 10:
            return
        self._last_alarm = now
        self._alarm("audit_log_write_failed", "critical", error.strerror or type(error).__name__)

    def _alarm(self, event: str, level: str, error: str | None) -> None:
        if self._alarm_stream is None:
            return
        fields: dict[str, Any] = {"timestamp": _now(), "event": event, "level": level}
        fields["path"] = self.path
        if error is not None:
            fields["error"] = str(error)
        fields["failures"] = self.failures
        fields["note"] = (
            "audit lines continue on stdout"
            if error is not None
            else "the audit file is written again; lines in between are on stdout"
        )
        try:
            self._alarm_stream.write(json.dumps(fields) + "\n")
            self._alarm_stream.flush()
        except Exception:  # noqa: BLE001 - nowhere left to report to
            pass


class AuditFileError(Exception):
    """The audit file cannot be written at start-up."""


def check_audit_path(path: str) -> None:
    """Fail early, with the reason, if the audit file cannot be created or appended to.

    The first line (``audit_log_opened``, chained like every audit line) is written
    synchronously, so a full disk or a read-only file system is caught here, before the
    server accepts any request.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
    except FileExistsError:  # makedirs' own wording ("File exists") hides what is wrong
        raise AuditFileError(
            f"AUDIT_LOG_PATH: cannot write {path}: {directory} is not a directory"
        ) from None
    except OSError as error:
        raise AuditFileError(f"AUDIT_LOG_PATH: cannot write {path}: {error.strerror}") from None
    try:
        audit_file = _AuditFile(path)
        try:
            opened = json.dumps(
                {"timestamp": _now(), "event": "audit_log_opened", "pid": os.getpid()}
            )
            audit_file.write([audit_file.chain.append(opened)])
        finally:
            audit_file.close()
    except OSError as error:
        raise AuditFileError(f"AUDIT_LOG_PATH: cannot write {path}: {error.strerror}") from None


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "msg": logging.INFO,
}

#: Lines the writer may fall behind by before new ones are dropped (and counted): a stdout
#: nobody reads must not grow the process without bound.
MAX_QUEUED_LINES = 50_000


class _Writer:
    """The one thread that writes: stdout, and audit lines (chained) to the audit file.

    It drains its queue every ``BATCH_INTERVAL`` seconds rather than blocking on it: waking it
    for every line made each log call hand the GIL to another thread, one of the dearest parts
    of a request. Flush markers and the stop sentinel are honoured in order.
    """

    BATCH_INTERVAL = 0.02

    def __init__(self, stream, audit_file: _AuditFile | None):
        self.stream = stream
        self.audit_file = audit_file
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.dropped = {"audit": 0, "other": 0}
        #: Every audit line ever dropped (never reset: the metrics' counter).
        self.audit_dropped_total = 0
        self._stop = object()
        self.thread = threading.Thread(target=self._run, name="aegis-log-writer", daemon=True)

    def put(self, is_audit: bool, line: str) -> None:
        if self.queue.qsize() >= MAX_QUEUED_LINES:
            self.dropped["audit" if is_audit else "other"] += 1
            self.audit_dropped_total += is_audit
            return
        self.queue.put_nowait((is_audit, line))

    def flush_marker(self) -> threading.Event:
        done = threading.Event()
        self.queue.put_nowait(done)
        return done

    def stop(self) -> None:
        self.queue.put_nowait(self._stop)
        self.thread.join()
        if self.audit_file is not None:
            self.audit_file.close()

    def _run(self) -> None:
        line_queue = self.queue
        while True:
            batch = []
            try:
                while True:
                    batch.append(line_queue.get_nowait())
            except queue.Empty:
                pass
            if not batch:
                time.sleep(self.BATCH_INTERVAL)
                continue
            try:
                if self._write_batch(batch):
                    return
            except Exception:  # noqa: BLE001 - this thread writes every line: it must live on
                _complain(f"the log writer failed: {sys.exc_info()[1]!r}")

    def _write_batch(self, batch: list) -> bool:
        """Write the batch; True once the stop sentinel is reached."""
        if self.audit_file is not None:
            self.audit_file.reopen_if_moved()
        out: list[str] = []
        audit: list[str] = []
        for item in batch:
            if item is self._stop:
                self._write(out, audit)
                return True
            if isinstance(item, threading.Event):
                self._write(out, audit)
                out, audit = [], []
                item.set()
                continue
            is_audit, line = item
            if is_audit and self.audit_file is not None:
                line = self.audit_file.chain.append(line)
                audit.append(line)
            out.append(line)
        self._write(out, audit)
        return False

    def _write(self, out: list[str], audit: list[str]) -> None:
        if any(self.dropped.values()):
            out, audit = self._report_drops(out, audit)
        if out:
            try:
                self.stream.write("\n".join(out) + "\n")
                self.stream.flush()
            except Exception:  # noqa: BLE001 - the audit file must still get its lines
                _complain(f"writing to stdout failed: {sys.exc_info()[1]!r}")
        if audit and self.audit_file is not None:
            self.audit_file.write_or_alarm(audit)

    def _report_drops(self, out: list[str], audit: list[str]) -> tuple[list[str], list[str]]:
        """One audit line saying how many lines were dropped while the queue was full."""
        audit_lines, other_lines = self.dropped["audit"], self.dropped["other"]
        self.dropped["audit"] = self.dropped["other"] = 0
        line = json.dumps(
            {
                "timestamp": _now(),
                "event": "log_lines_dropped",
                "level": "critical",
                "audit_lines": audit_lines,
                "other_lines": other_lines,
                "note": f"the log writer fell {MAX_QUEUED_LINES} lines behind",
            }
        )
        if self.audit_file is not None:
            line = self.audit_file.chain.append(line)
            audit = [*audit, line]
        return [*out, line], audit


_last_complaint = [0.0]


def _complain(message: str) -> None:
    """A failure of the log writer itself, on stderr, at most every 10 s (a stdout that stays
    broken must not flood stderr instead)."""
    now = time.monotonic()
    if now - _last_complaint[0] < 10:
        return
    _last_complaint[0] = now
    try:
        if sys.__stderr__ is not None:
            sys.__stderr__.write(f"aegis-mcp: {message}\n")
    except Exception:  # noqa: BLE001 - nowhere left to report to
        pass


class _QueueLogger:
    """structlog's output for our own events: the rendered line goes straight to the writer
    (stdlib logs take the root handler, ``_ToWriter``)."""

    def __init__(self, name: str, writer: _Writer):
        self.name = name
        self._is_audit = name == AUDIT_LOGGER
        self._writer = writer

    def _line(self, line: str) -> None:
        self._writer.put(self._is_audit, line)

    def __getattr__(self, method: str):
        if method not in _LEVELS:
            raise AttributeError(method)
        return self._line


class _ToWriter(logging.Handler):
    """The root handler: stdlib records, rendered like our own lines, go to the writer."""

    def __init__(self, writer: _Writer):
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._writer.put(record.name == AUDIT_LOGGER, self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


class _DropBelow:
    """Events under LOG_LEVEL are dropped, except audit events, which are always written."""

    def __init__(self, level: int):
        self.level = level

    def __call__(self, logger, method_name: str, event_dict: MutableMapping) -> MutableMapping:
        if (
            _LEVELS.get(method_name, logging.INFO) < self.level
            and getattr(logger, "name", None) != AUDIT_LOGGER
        ):
            raise structlog.DropEvent
        return event_dict


class LoggingRuntime:
    """The running log pipeline: stop() drains the queue so no line is lost at shutdown."""

    def __init__(self, writer: _Writer):
        self.writer = writer
        self._stopped = threading.Event()

    @property
    def audit_file(self) -> _AuditFile | None:
        return self.writer.audit_file

    def queue_depth(self) -> int:
        return self.writer.queue.qsize()

    def dropped(self) -> dict[str, int]:
        """Lines dropped since the last report (the writer reports and resets them)."""
        return dict(self.writer.dropped)

    def writing(self) -> bool:
        """Whether the writer thread is alive."""
        return self.writer.thread.is_alive()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every line logged so far has been written (tests, shutdown)."""
        if self._stopped.is_set():
            return True
        return self.writer.flush_marker().wait(timeout)

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.writer.stop()  # writes everything queued, then joins the thread


def configure_logging(
    level: str = "info",
    audit_path: str | None = None,
    scrubber: SecretScrubber | None = None,
    stream=None,
    cache_loggers: bool = True,
) -> LoggingRuntime:
    """Configure structlog and the stdlib root logger once, at start-up (the audit file's tail
    is read here, before any request is served, to continue its chain)."""
    stream = stream if stream is not None else sys.stdout
    scrubber = scrubber or SecretScrubber()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        _add_timestamp,
    ]
    rendering: list[Any] = [_ScrubbingJSONRenderer(scrubber)]  # in the caller's thread
    writer = _Writer(stream, _AuditFile(audit_path, alarm_stream=stream) if audit_path else None)
    threshold = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[_DropBelow(threshold), *shared, *rendering],
        logger_factory=lambda name=None, *_: _QueueLogger(name or "aegis", writer),
        # Debug events cost nothing unless LOG_LEVEL is debug; audit events are info and up.
        wrapper_class=structlog.make_filtering_bound_logger(min(threshold, logging.INFO)),
        cache_logger_on_first_use=cache_loggers,  # off in tests, which reconfigure
    )

    root_handler = _ToWriter(writer)
    root_handler.setFormatter(  # stdlib logs (Tornado...): rendered the same way
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    root_handler.addFilter(_WithholdRawInput())
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(root_handler)
    root.setLevel(level.upper())
    # Audit events are never filtered by LOG_LEVEL.
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.INFO)
    # Tornado's own access logger is replaced by our log_function; keep its noise out.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    writer.thread.start()
    return LoggingRuntime(writer)
