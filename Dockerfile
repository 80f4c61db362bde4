# AegisGitea MCP server image.
#
# Build:  docker compose build        (or: docker build -t aegis-gitea-mcp .)
# Run:    docker compose up -d        (settings come from .env; see docker-compose.yml)
#
# Two stages: the builder installs the package and its dependencies into a virtualenv; the
# runtime stage copies only that virtualenv, so no pip cache, build files or source tree ship.
# Nothing secret is baked in: keys and the Gitea token arrive at run time through the env file.

FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
# README.m[d]: setup.py reads README.md when present; the pattern keeps the build working if it is
# not (a COPY whose other sources match still succeeds when a wildcard matches nothing).
COPY setup.py README.m[d] ./
COPY aegis_tornado/ ./aegis_tornado/
RUN pip install . && pip check


FROM python:3.11-slim

LABEL org.opencontainers.image.title="AegisGitea MCP" \
      org.opencontainers.image.description="Read-only, API-key-protected MCP gateway to a self-hosted Gitea"

# A fixed, numeric, unprivileged identity: volume ownership stays stable across rebuilds, and
# orchestrators that require a non-root numeric USER (runAsNonRoot) accept the image.
RUN groupadd --gid 10001 aegis \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin aegis \
    && mkdir -p /var/log/aegis-mcp /var/lib/aegis-mcp \
    && chown 10001:10001 /var/log/aegis-mcp /var/lib/aegis-mcp \
    && chmod 0750 /var/log/aegis-mcp /var/lib/aegis-mcp

COPY --from=builder /opt/venv /opt/venv
COPY scripts/healthcheck.py /app/scripts/healthcheck.py
# The audit chain's checker, for operators inside the container (it imports the installed package):
#   docker compose exec aegis-mcp python scripts/verify_audit.py /var/log/aegis-mcp/audit.log
COPY scripts/verify_audit.py /app/scripts/verify_audit.py

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MCP_HOST=0.0.0.0 \
    MCP_PORT=8080 \
    AUDIT_LOG_PATH=/var/log/aegis-mcp/audit.log \
    OAUTH_STATE_PATH=/var/lib/aegis-mcp/oauth.sqlite3

WORKDIR /app
# The audit log outlives the container. A named volume is initialised from this directory, so it
# starts owned by UID 10001; a bind-mounted host directory must be given that owner by hand.
# The OAuth store (clients, grants, hashed tokens, encrypted Gitea tokens) must be writable and
# persistent too: on the read-only root, sign-in would fail.
VOLUME ["/var/log/aegis-mcp", "/var/lib/aegis-mcp"]
# The MCP port. /metrics on its own METRICS_PORT (off by default; docs/OPERATIONS.md) needs
# METRICS_HOST=0.0.0.0 to be reachable from other containers; docker-compose.yml says how.
EXPOSE 8080

USER 10001:10001

# Stdlib probe of GET /health on 127.0.0.1:$MCP_PORT (no curl in the image).
HEALTHCHECK --start-period=10s --interval=30s --timeout=5s --retries=3 \
    CMD ["python", "/app/scripts/healthcheck.py"]

ENTRYPOINT ["aegis-mcp"]
