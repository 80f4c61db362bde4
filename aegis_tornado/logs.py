"""Logging: structlog JSON lines to stdout, and audit events also to the audit file.

Every line is rendered (and scrubbed of secrets) in the thread that logs it, then handed to a
queue; a listener thread does the writing, so neither stdout nor the disk can block the event
loop. The audit file is a ``WatchedFileHandler``, which reopens the file when logrotate moves it.
A write failure on the audit file (disk full, file gone read-only) is reported loudly on stdout,
which keeps receiving every audit line.
"""

from __future__ import annotations

import hashlib
import logging
import logging.handlers
import os
import queue
import re
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, Iterable

import structlog

AUDIT_LOGGER = "aegis.audit"

# Credentials that may be embedded in text handed to a logger: a query parameter, an
# Authorization header value, or a Gitea "token" header value.
_CREDENTIAL_PATTERNS = re.compile(
    r"(?P<name>api_key=|access_token=|token=|[Bb]earer\s+|[Tt]oken\s+|[Bb]asic\s+)"
    r"(?P<secret>[^\s&\"',;]+)"
)
_HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")
REDACTED = "[REDACTED]"


class SecretScrubber:
    """Removes credentials from rendered log lines.

    Configured API keys are known only by their SHA-256 digests, so a long hex run is hashed and
    compared with them; the Gitea token is held in plain text anyway (it is sent to Gitea), so it
    is matched literally. Credential-shaped substrings are removed whatever they contain.
    """

    def __init__(self, key_digests: Iterable[str] = (), literals: Iterable[str | None] = ()):
        self.key_digests = frozenset(key_digests)
        self.literals = tuple(sorted({s for s in literals if s and len(s) >= 8}, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for literal in self.literals:
            if literal in text:
                text = text.replace(literal, REDACTED)
        text = _CREDENTIAL_PATTERNS.sub(lambda m: m.group("name") + REDACTED, text)
        if self.key_digests:
            text = _HEX_RUN.sub(self._redact_if_key, text)
        return text

    def _redact_if_key(self, match: re.Match) -> str:
        digest = hashlib.sha256(match.group(0).encode()).hexdigest()
        return REDACTED if digest in self.key_digests else match.group(0)


def _timestamp(_, __, event_dict: dict) -> dict:
    event_dict["timestamp"] = (
        datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )
    return event_dict


def _timestamp_and_event_first(_, __, event_dict: dict) -> dict:
    """``timestamp`` then ``event`` lead every line, so grep patterns like
    ``api_authentication.*success`` match the event before any free-text field."""
    ordered = {"timestamp": event_dict.pop("timestamp", None), "event": event_dict.pop("event", None)}
    ordered.update(event_dict)
    return ordered


class _ScrubbingJSONRenderer:
    def __init__(self, scrubber: SecretScrubber):
        self._render = structlog.processors.JSONRenderer()
        self.scrubber = scrubber

    def __call__(self, logger, name, event_dict) -> str:
        return self.scrubber(self._render(logger, name, event_dict))


class _LoudFileHandler(logging.handlers.WatchedFileHandler):
    """An audit file handler that, when writing fails, says so on stdout (at most every 10 s)."""

    def __init__(self, path: str, alarm_stream):
        super().__init__(path, encoding="utf-8", delay=False)
        self._alarm_stream = alarm_stream
        self._last_alarm = 0.0
        self.failures = 0

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:
            self.handleError(None)

    def close(self) -> None:
        try:
            super().close()
        except OSError:
            self.handleError(None)

    def handleError(self, record: logging.LogRecord | None) -> None:  # noqa: N802 (stdlib)
        self.failures += 1
        error = sys.exc_info()[1]
        now = time.monotonic()
        if now - self._last_alarm < 10:
            return
        self._last_alarm = now
        detail = getattr(error, "strerror", None) or type(error).__name__
        line = (
            '{"timestamp": "%s", "event": "audit_log_write_failed", "level": "critical", '
            '"path": "%s", "error": "%s", "failures": %d, '
            '"note": "audit lines continue on stdout"}\n'
            % (
                datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                self.baseFilename.replace('"', "'"),
                str(detail).replace('"', "'"),
                self.failures,
            )
        )
        try:
            self._alarm_stream.write(line)
            self._alarm_stream.flush()
        except Exception:  # noqa: BLE001 - nowhere left to report to
            pass


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
    line = '{"timestamp": "%s", "event": "audit_log_opened", "pid": %d}\n' % (
        datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        os.getpid(),
    )
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
    except OSError as error:
        raise AuditFileError(f"AUDIT_LOG_PATH: cannot write {path}: {error.strerror}") from None


class _FlushMarker:
    def __init__(self) -> None:
        self.done = threading.Event()


class _Listener(logging.handlers.QueueListener):
    def handle(self, record) -> None:
        if isinstance(record, _FlushMarker):
            record.done.set()
            return
        super().handle(record)


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
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=cache_loggers,  # off in tests, which reconfigure
    )

    line_queue: queue.SimpleQueue = queue.SimpleQueue()
    queue_handler = logging.handlers.QueueHandler(line_queue)
    queue_handler.setFormatter(formatter)  # render in the caller's thread (context, scrubbing)

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
