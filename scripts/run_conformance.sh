#!/usr/bin/env bash
# Run the official MCP conformance suite (../shared/tools/conformance) against the real server:
#   1. Streamable HTTP and legacy HTTP+SSE, with the Bearer header, every generic scenario;
#   2. dns-rebinding-protection against a server with auth disabled on localhost.
# Starts and stops its own servers (demo Gitea, random ports). Exit 0 iff every run passed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${AEGIS_SHARED:-$ROOT/../shared}"
WORK="$ROOT/build/conformance"
PY="${PY:-$ROOT/.venv/bin/python}"
[[ -x "$PY" ]] || PY="$(command -v python3)"

if [[ ! -f "$WORK/node_modules/@modelcontextprotocol/conformance/dist/index.js" ]]; then
  mkdir -p "$WORK"
  cp -r "$SHARED/tools/conformance/." "$WORK/"
  chmod -R u+w "$WORK"
  "$WORK/setup.sh"
fi

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# start_server LOGFILE ENV... ; sets PORT
start_server() {
  local logfile="$1"; shift
  env "$@" MCP_HOST=127.0.0.1 MCP_PORT=0 AUDIT_LOG_PATH="$WORK/audit.log" \
    "$PY" -m aegis_tornado >"$logfile" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 100); do
    PORT="$(sed -n 's/.*"event": "listening".*"port": \([0-9]*\).*/\1/p' "$logfile" | head -1)"
    [[ -n "$PORT" ]] && return 0
    sleep 0.1
  done
  echo "server did not start; its log:" >&2; cat "$logfile" >&2; return 1
}

KEY="$("$PY" -c 'import secrets; print(secrets.token_hex(32))')"
start_server "$WORK/server-auth.log" -u GITEA_URL MCP_API_KEYS="$KEY"
AUTH_PORT="$PORT"
start_server "$WORK/server-open.log" -u GITEA_URL AUTH_ENABLED=false
OPEN_PORT="$PORT"

status=0
"$WORK/run.sh" -H "Authorization: Bearer $KEY" "http://127.0.0.1:$AUTH_PORT/mcp" streamable-http || status=1
"$WORK/run.sh" -H "Authorization: Bearer $KEY" "http://127.0.0.1:$AUTH_PORT/mcp/sse" sse || status=1
"$WORK/run.sh" -s dns-rebinding-protection "http://127.0.0.1:$OPEN_PORT/mcp" || status=1
exit "$status"
