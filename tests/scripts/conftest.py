"""Fixtures for the operator-script tests: run each script the way an operator would.

Scripts run in a fresh subprocess, in a temporary working directory, with ``python -I`` (no
PYTHONPATH, no user site, script directory not trusted implicitly): they must find the checkout's
``aegis_tornado`` on their own, as with a plain ``python3 scripts/x.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"

# Variables a developer's shell might carry that would change what the scripts do.
_SCRUBBED = (
    "KEY_METADATA_FILE",
    "MCP_PORT",
    "MCP_API_KEYS",
    "HEALTHCHECK_TIMEOUT",
    "PYTHONPATH",
    "AUDIT_LOG_PATH",
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("AEGIS_")}
    env.update(extra)
    return env


@pytest.fixture
def make_env():
    """``make_env(NAME=value, ...)``: the test process's environment, scrubbed, plus these."""
    return clean_env


@pytest.fixture
def run_py(tmp_path):
    """Run ``scripts/<name>`` with the test's Python; cwd is the test's tmp dir by default."""

    def run(
        name: str, *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 30
    ):
        return subprocess.run(
            [sys.executable, "-I", str(SCRIPTS / name), *args],
            cwd=cwd or tmp_path,
            env=env if env is not None else clean_env(),
            stdin=subprocess.DEVNULL,  # a prompt would hit EOF: the scripts must never ask
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
