"""Log pipeline micro-benchmark: lines per second through ``configure_logging``.

Logs N audit lines and N other lines from one thread (audit file on, so the hash chain is
computed too, stdout to /dev/null) and times them until the writer has flushed them all;
five runs, the median is printed. ``--logs FILE`` measures another ``logs.py`` instead, e.g.
the one from before the writer thread used only public APIs:

    git show 0381c9d:aegis_tornado/logs.py > /tmp/old_logs.py
    .venv/bin/python bench/log_lines.py --logs /tmp/old_logs.py
    .venv/bin/python bench/log_lines.py

Run the two alternately a few times: on a shared machine only their ratio means anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time

import structlog


def load(path: str | None):
    if path is None:
        import aegis_tornado.logs as logs

        return logs
    spec = importlib.util.spec_from_file_location("aegis_tornado.logs_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "aegis_tornado"  # its relative imports resolve in the package
    spec.loader.exec_module(module)
    return module


def run(logs, lines: int) -> float:
    directory = tempfile.mkdtemp()
    with open(os.devnull, "w") as out:
        runtime = logs.configure_logging("info", os.path.join(directory, "audit.log"), stream=out)
        audit, other = structlog.get_logger("aegis.audit"), structlog.get_logger("aegis.http")
        start = time.perf_counter()
        for _ in range(lines):
            audit.info(
                "tool_call",
                tool="get_file_contents",
                transport="streamable",
                status="success",
                duration_ms=1.23,
                key_hint="73bb1be4...03be",
                client_ip="127.0.0.1",
            )
            other.info("http_request", method="POST", path="/mcp", status=200, duration_ms=2.5)
        runtime.flush(60)
        elapsed = time.perf_counter() - start
        runtime.stop()
    structlog.reset_defaults()
    return 2 * lines / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--logs", help="another logs.py to measure")
    parser.add_argument(
        "--lines", type=int, default=40_000, help="audit lines (and as many others)"
    )
    args = parser.parse_args()
    logs = load(args.logs)
    rates = [run(logs, args.lines) for _ in range(5)]
    print(f"{args.logs or 'aegis_tornado/logs.py'}: {statistics.median(rates):,.0f} lines/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
