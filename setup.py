"""Packaging for AegisGitea MCP: a read-only, access-controlled MCP gateway to one Gitea."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "aegis_tornado" / "__init__.py").read_text(), re.M
).group(1)

setup(
    name="aegis-gitea-mcp",
    version=VERSION,
    description="A security gate that lets MCP clients (ChatGPT first) read a self-hosted Gitea",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["aegis_tornado", "aegis_tornado.*"]),
    include_package_data=True,
    install_requires=[
        "tornado>=6.4,<7",
        "pyyaml>=6,<7",
        "requests-futures>=1.0,<2",
        "structlog>=24.1",
        # GET /metrics: the Prometheus exposition format, label escaping and histograms done
        # by the reference client rather than by hand.
        "prometheus-client>=0.20,<1",
        # .env files: the same reading (quotes, export, comments) as docker compose and most
        # tools, for the server (settings.py) and the key scripts (scripts/_keytools.py).
        "python-dotenv>=1.0,<2",
        # OAuth 2.1: oauthlib owns the protocol state machine (PKCE, code exchange, refresh,
        # error responses); cryptography encrypts users' Gitea tokens at rest (Fernet).
        "oauthlib>=3.2,<5",
        "cryptography>=42",
        # Replies (and tool results) are encoded by orjson: 5-10x faster than json on a 10 KB
        # reply, a measured share of each call's cost (docs/PERFORMANCE.md); strict JSON out.
        "orjson>=3.9,<4",
        # One pass finds where the secret rules' ~300 keywords occur (tools/secrets.py): 3-12x
        # cheaper per KB than a stdlib search per keyword. Wheels exist for x86-64; elsewhere
        # the stdlib engine gives the same results, slower.
        # STATE_URL (several replicas or workers): redis-py's asyncio client speaks the protocol,
        # pools and reconnects; we write only the keys and the limiter's Lua script.
        "redis>=5,<9",
        "hyperscan>=0.9,<1; platform_machine == 'x86_64' or platform_machine == 'AMD64'",
    ],
    extras_require={
        # Pinned: the tests drive the server with these real clients, so a new release must be a
        # deliberate upgrade, not a surprise in CI.
        "test": [
            "pytest==9.2.0",
            "pytest-tornado==0.8.1",
            "mcp==2.3.0",
            "jsonschema==4.26.0",
            "hypothesis==6.170.17",
            # A hung test fails after pytest.ini's timeout instead of hanging CI.
            "pytest-timeout==2.4.0",
        ],
        # Static checks (make lint): pinned so that a new rule or a stricter inference is a
        # deliberate upgrade, not a red CI run on an unchanged tree.
        "lint": [
            "ruff==0.17.6",
            "mypy==2.4.1",
            "types-PyYAML==6.0.12.20261122",
            "types-requests==2.33.0.20261030",
        ],
    },
    entry_points={"console_scripts": ["aegis-mcp = aegis_tornado.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Tornado",
        "License :: OSI Approved :: MIT License",
    ],
)
