"""The server as a process, for tests that need signals, exit codes and the real files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..conftest import KEY, OTHER_KEY

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not re.match(
            r"^(GITEA_|MCP_|AUTH_|MAX_|AUDIT_|LOG_LEVEL|TRUSTED_|REPO_|SENSITIVE_"
            r"|ALLOWED_|SESSION_|SSE_|SHUTDOWN_|HTTP_|STATE_)",
            k,
        )
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


class ServerProcess:
    """``python -m <module> --port 0``; stdout lines collected as they come (a full pipe would
    stall the log writer), the port taken from the ``listening`` line."""

    def __init__(
        self,
        tmp_path,
        module: str = "tests.hardening.serve_test_tools",
        preexec_fn=None,
        args: tuple[str, ...] = (),
        **env: str,
    ):
        env.setdefault("MCP_API_KEYS", f"{KEY},{OTHER_KEY}")
        env.setdefault("GITEA_URL", "http://127.0.0.1:9")
        env.setdefault("GITEA_TOKEN", "hardening-bot-token")
        env.setdefault("AUDIT_LOG_PATH", str(tmp_path / "audit.log"))
        self.audit_path = env["AUDIT_LOG_PATH"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", "0", *args],
            env=clean_env(**env),
            cwd=tmp_path,  # not the checkout: a developer's .env there must not count
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec_fn,
        )
        self.lines: list[str] = []
        self._listening = threading.Event()
        self.port: int | None = None
        self.err_lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # stderr is drained as it comes too: a full pipe would stall the process.
        self._err_reader = threading.Thread(
            target=lambda: self.err_lines.extend(self.proc.stderr), daemon=True
        )
        self._err_reader.start()
        if not self._listening.wait(20):
            self.proc.kill()
            self._err_reader.join(5)
            raise AssertionError(f"no 'listening' line: {self.stderr_so_far()[:2000]}")

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if self.port is None and '"listening"' in line:
                self.port = json.loads(line)["port"]
                self._listening.set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def records(self) -> list[dict]:
        return [json.loads(line) for line in list(self.lines) if line.strip()]

    def audit(self) -> list[dict]:
        with open(self.audit_path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def signal(self, signum=signal.SIGTERM) -> float:
        self.proc.send_signal(signum)
        return time.monotonic()

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stderr(self) -> str:
        """Everything written to stderr, once the process has ended."""
        self._err_reader.join(5)
        return self.stderr_so_far()

    def stderr_so_far(self) -> str:
        return "".join(self.err_lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
