#!/usr/bin/env python3
"""Container health probe for AegisGitea MCP: exit 0 if ``GET /health`` answers 200, else 1.

Stdlib only, so the image needs no curl. It asks ``127.0.0.1:$MCP_PORT`` (default 8080) directly
with ``http.client``: no proxy from the environment, no redirect following, a short timeout
(``$HEALTHCHECK_TIMEOUT`` seconds, default 3, below the Dockerfile's 5 s HEALTHCHECK timeout).
One line of output tells ``docker inspect`` why a check failed.
"""

from __future__ import annotations

import http.client
import os
import sys

HOST = "127.0.0.1"
PATH = "/health"


def main() -> int:
    try:
        port = int(os.environ.get("MCP_PORT") or 8080)
        timeout = float(os.environ.get("HEALTHCHECK_TIMEOUT") or 3)
        if not 0 < port < 65536 or timeout <= 0:
            raise ValueError
    except ValueError:
        print("unhealthy: MCP_PORT or HEALTHCHECK_TIMEOUT is not a valid number")
        return 1

    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", PATH, headers={"User-Agent": "aegis-mcp-healthcheck"})
        response = connection.getresponse()
        response.read(65536)
    except (OSError, http.client.HTTPException) as exc:
        print(f"unhealthy: GET http://{HOST}:{port}{PATH} failed: {exc or type(exc).__name__}")
        return 1
    finally:
        connection.close()

    if response.status != 200:
        print(f"unhealthy: GET http://{HOST}:{port}{PATH} answered {response.status}")
        return 1
    print(f"healthy: GET http://{HOST}:{port}{PATH} answered 200")
    return 0


if __name__ == "__main__":
    sys.exit(main())
