"""Logging: structlog JSON lines to stdout, and audit events also to the audit file.

Every line is rendered (and scrubbed of secrets) in the thread that logs it, then handed to a
queue; a listener thread does the writing, so neither stdout nor the disk can block the event
loop. Our own structlog events skip the stdlib logger chain on the way to the queue (see
``_QueueLogger``); stdlib records (Tornado, urllib3) are rendered the same way by the root
handler. The audit file is a ``WatchedFileHandler``, which reopens the file when logrotate moves it.
A write failure on the audit file (disk full, file gone read-only) is reported loudly on stdout,
which keeps receiving every audit line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Iterable, MutableMapping
from datetime import datetime, timezone
from typing import Any, cast

import structlog

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


def _timestamp(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict["timestamp"] = (
        datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )
    return event_dict


def _timestamp_and_event_first(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """``timestamp`` then ``event`` lead every line, so grep patterns like
    ``api_authentication.*success`` match the event before any free-text field."""
    ordered = {
        "timestamp": event_dict.pop("timestamp", None),
        "event": event_dict.pop("event", None),
    }
    ordered.update(event_dict)
    return ordered


class _ScrubbingJSONRenderer:
    def __init__(self, scrubber: SecretScrubber):
        self._render = structlog.processors.JSONRenderer()
        self.scrubber = scrubber

    def __call__(self, logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> str:
        rendered = self._render(logger, name, event_dict)
        return self.scrubber(rendered if isinstance(rendered, str) else rendered.decode())


class _LoudFileHandler(logging.handlers.WatchedFileHandler):
    """An audit file handler that, when writing fails, says so on stdout (at most every 10 s),
    says so again when writing works again, and never lets a failure escape: an exception out
    of a handler would kill the thread that writes every log line, stdout included."""

    def __init__(self, path: str, alarm_stream):
        super().__init__(path, encoding="utf-8", delay=False)
        self._alarm_stream = alarm_stream
        self._last_alarm = 0.0
        self.failures = 0
        self._failing = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.reopenIfNeeded()
            logging.FileHandler.emit(self, record)
        except Exception:  # noqa: BLE001 - reported, and stdout keeps the line
            self.handleError(record)

    def reopenIfNeeded(self) -> None:  # noqa: N802 (stdlib)
        try:
            super().reopenIfNeeded()
        except OSError:
            # The old file would not take its buffered lines (disk full) so the stdlib never
            # moved to the new one: give the old file up, with what it held, and open the path.
            self.handleError(None)
            stream, self.stream = self.stream, None
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
            self.stream = self._open()
            self._statstream()

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:
            self.handleError(None)
            return
        if self._failing and self.stream is not None:
            self._failing = False
            self._alarm("audit_log_write_recovered", "warning", None)

    def close(self) -> None:
        try:
            super().close()
        except OSError:
            self.handleError(None)

    def handleError(self, record: logging.LogRecord | None) -> None:  # noqa: N802 (stdlib)
        self.failures += 1
        self._failing = True
        error = sys.exc_info()[1]
        now = time.monotonic()
        if now - self._last_alarm < 10:
            return
        self._last_alarm = now
        self._alarm(
            "audit_log_write_failed",
            "critical",
            getattr(error, "strerror", None) or type(error).__name__,
        )

    def _alarm(self, event: str, level: str, error: str | None) -> None:
        fields: dict[str, str | int] = {
            "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "event": event,
            "level": level,
            "path": self.baseFilename,
        }
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


class _OnlyAudit(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == AUDIT_LOGGER


class AuditFileError(Exception):
    """The audit file cannot be written at start-up."""


def check_audit_path(path: str) -> None:
    """Fail early, with the reason, if the audit file cannot be created or appended to.

    The first line (``audit_log_opened``) is written and flushed synchronously, so a full disk
    or a read-only file system is caught here, before the server accepts any request.
    """
    stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    line = f'{{"timestamp": "{stamp}", "event": "audit_log_opened", "pid": {os.getpid()}}}\n'
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
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
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


def _line_record(name: str, levelno: int, line: str) -> logging.LogRecord:
    """A LogRecord carrying an already-rendered line, built without ``LogRecord.__init__``:
    the caller lookup, clock and thread bookkeeping it does are what made stdlib logging the
    dearest part of a request. The writer thread's handlers need only these fields."""
    record = logging.LogRecord.__new__(logging.LogRecord)
    record.__dict__.update(
        name=name,
        msg=line,
        args=None,
        levelno=levelno,
        levelname=logging.getLevelName(levelno),
        exc_info=None,
        exc_text=None,
        stack_info=None,
    )
    return record


class _QueueLogger:
    """structlog's output for our own events: the rendered line goes straight to the writer
    thread's queue (stdlib logs still take the root handler)."""

    def __init__(self, name: str, line_queue: queue.SimpleQueue):
        self.name = name
        self._queue = line_queue

    def _emit(self, method: str):
        levelno = _LEVELS[method]

        def emit(line: str) -> None:
            self._queue.put_nowait(_line_record(self.name, levelno, line))

        return emit

    def __getattr__(self, method: str):
        if method not in _LEVELS:
            raise AttributeError(method)
        emit = self._emit(method)
        setattr(self, method, emit)
        return emit


class _DropBelow:
    """Events under LOG_LEVEL are dropped, except audit events, which are always written."""

    def __init__(self, level: int):
        self.level = level

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if (
            _LEVELS.get(method_name, logging.INFO) < self.level
            and getattr(logger, "name", None) != AUDIT_LOGGER
        ):
            raise structlog.DropEvent
        return event_dict


class _FlushMarker:
    def __init__(self) -> None:
        self.done = threading.Event()


class _Listener(logging.handlers.QueueListener):
    """Writes queued lines in batches, every ``BATCH_INTERVAL`` seconds.

    Waking the writer for every line (a blocking ``get``) made each log call hand the GIL to
    another thread, one of the dearest parts of a request; polling lets the queue fill and
    empties it in one go. Flush markers and the stop sentinel are honoured in order.
    """

    BATCH_INTERVAL = 0.02

    _sentinel: Any  # the base class's stop marker (untyped in typeshed)

    def _monitor(self) -> None:
        line_queue = cast(queue.SimpleQueue, self.queue)  # configure_logging hands it one
        while True:
            batch = []
            try:
                while True:
                    batch.append(line_queue.get_nowait())
            except queue.Empty:
                pass
            for record in batch:
                if record is self._sentinel:
                    return
                self.handle(record)
            if not batch:
                time.sleep(self.BATCH_INTERVAL)

    def handle(self, record) -> None:
        if isinstance(record, _FlushMarker):
            record.done.set()
            return
        for handler in self.handlers:
            if record.levelno < handler.level:
                continue
            try:
                handler.handle(record)
            except Exception:  # noqa: BLE001 - one broken output must not silence the others
                try:  # __stderr__ is None without a console: the except covers that too
                    sys.__stderr__.write(  # type: ignore[union-attr]
                        f"aegis-mcp: a log handler failed: {sys.exc_info()[1]!r}\n"
                    )
                except Exception:  # noqa: BLE001
                    pass


class LoggingRuntime:
    """The running log pipeline: stop() drains the queue so no line is lost at shutdown."""

    def __init__(self, listener: _Listener, file_handler: _LoudFileHandler | None):
        self.listener = listener
        self.file_handler = file_handler
        self._stopped = threading.Event()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every line logged so far has been written (tests, shutdown)."""
        if self._stopped.is_set():
            return True
        marker = _FlushMarker()
        self.listener.queue.put_nowait(marker)
        written = marker.done.wait(timeout)
        for handler in self.listener.handlers:
            handler.flush()
        return written

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.listener.stop()  # processes everything queued, then joins the thread
        for handler in self.listener.handlers:
            handler.flush()
            handler.close()


def configure_logging(
    level: str = "info",
    audit_path: str | None = None,
    scrubber: SecretScrubber | None = None,
    stream=None,
    cache_loggers: bool = True,
) -> LoggingRuntime:
    """Configure structlog and the stdlib root logger once, at start-up."""
    stream = stream if stream is not None else sys.stdout
    scrubber = scrubber or SecretScrubber()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        _timestamp,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _timestamp_and_event_first,
            _ScrubbingJSONRenderer(scrubber),
        ],
    )
    line_queue: queue.SimpleQueue = queue.SimpleQueue()
    threshold = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            _DropBelow(threshold),
            *shared,
            structlog.processors.format_exc_info,
            _timestamp_and_event_first,
            _ScrubbingJSONRenderer(scrubber),  # rendered in the caller's thread
        ],
        logger_factory=lambda name=None, *_: _QueueLogger(name or "aegis", line_queue),
        # Debug events cost nothing unless LOG_LEVEL is debug; audit events are info and up.
        wrapper_class=structlog.make_filtering_bound_logger(min(threshold, logging.INFO)),
        cache_logger_on_first_use=cache_loggers,  # off in tests, which reconfigure
    )

    queue_handler = logging.handlers.QueueHandler(line_queue)
    queue_handler.setFormatter(formatter)  # stdlib logs (Tornado...): rendered the same way
    queue_handler.addFilter(_WithholdRawInput())

    stdout_handler = logging.StreamHandler(stream)
    stdout_handler.setFormatter(logging.Formatter("%(message)s"))
    handlers: list[logging.Handler] = [stdout_handler]
    file_handler = None
    if audit_path:
        file_handler = _LoudFileHandler(audit_path, alarm_stream=stream)
        file_handler.setFormatter(logging.Formatter("%(message)s"))
        file_handler.addFilter(_OnlyAudit())
        handlers.append(file_handler)
    listener = _Listener(line_queue, *handlers, respect_handler_level=True)

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(queue_handler)
    root.setLevel(level.upper())
    # Audit events are never filtered by LOG_LEVEL.
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.INFO)
    # Tornado's own access logger is replaced by our log_function; keep its noise out.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    listener.start()
    return LoggingRuntime(listener, file_handler)
