#!/usr/bin/env bash
# Authentication summary from the AegisGitea MCP audit log (run it weekly).
#
# Usage: scripts/auth_summary.sh [--days N | --since YYYY-MM-DD[THH:MM:SS]] [LOGFILE]
#
# With LOGFILE, that file is read (make auth-summary LOG=FILE). Without it, the first of:
#   the running container ($AEGIS_CONTAINER, default aegis-gitea-mcp): $AEGIS_AUDIT_LOG in it
#     (default /var/log/aegis-mcp/audit.log), with `docker exec`;
#   the local server's log (`make run`): $AUDIT_LOG_PATH, default logs/audit.log;
#   $AEGIS_AUDIT_LOG on this machine (inside the container, say).
# $AEGIS_DOCKER names the docker command (default: docker).
#
# Counting is exact, not a word search: a field is recognised only in its JSON form
# `"name": "value"` (after `{` or a space). Inside a JSON string every quote is escaped (\"), so a
# user agent containing "success", or even the text `"event": "access_denied"`, never takes that form.
# Needs only bash, awk (POSIX; mawk is fine) and mktemp/date. No jq.
#
# Exit codes: 0 report printed; 2 bad arguments or the log could not be read.
set -euo pipefail

CONTAINER="${AEGIS_CONTAINER:-aegis-gitea-mcp}"
LOG_PATH="${AEGIS_AUDIT_LOG:-/var/log/aegis-mcp/audit.log}"
LOCAL_LOG="${AUDIT_LOG_PATH:-logs/audit.log}"
DOCKER="${AEGIS_DOCKER:-docker}"
TOP=5

usage() {
    sed -n '4,12s/^# \{0,1\}//p' "$0"
}

die() {
    echo "error: $*" >&2
    exit 2
}

# The UTC timestamp N days ago, in the audit log's format (GNU date, then BSD date).
days_ago() {
    local seconds
    seconds=$(($(date -u +%s) - $1 * 86400))
    date -u -d "@${seconds}" +%Y-%m-%dT%H:%M:%S 2>/dev/null || date -u -r "${seconds}" +%Y-%m-%dT%H:%M:%S
}

since=""
while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --days)
            [ $# -ge 2 ] || die "--days needs a number"
            [[ "$2" =~ ^[0-9]+$ ]] || die "--days needs a whole number of days, not '$2'"
            since="$(days_ago "$2")"
            shift 2
            ;;
        --since)
            [ $# -ge 2 ] || die "--since needs a date"
            since="$2"
            shift 2
            ;;
        --) shift; break ;;
        -*) usage >&2; die "unknown option $1" ;;
        *) break ;;
    esac
done
[ $# -le 1 ] || { usage >&2; die "give at most one log file"; }
if [ -n "$since" ] && ! [[ "$since" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:.]*)?$ ]]; then
    die "--since wants YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC), not '$since'"
fi

tmp=""
cleanup() { if [ -n "$tmp" ]; then rm -f "$tmp"; fi; }
trap cleanup EXIT

if [ $# -eq 1 ]; then
    log="$1"
    [ -f "$log" ] && [ -r "$log" ] || die "cannot read log file '$log'"
    source_desc="$log"
elif command -v "$DOCKER" >/dev/null 2>&1 &&
    [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" = true ]; then
    tmp="$(mktemp)"
    # Copy once, then count locally: one docker exec, and a consistent snapshot.
    "$DOCKER" exec "$CONTAINER" cat "$LOG_PATH" >"$tmp" ||
        die "could not read $LOG_PATH in container $CONTAINER (is it running? try: docker compose ps)"
    log="$tmp"
    source_desc="$CONTAINER:$LOG_PATH"
elif [ -f "$LOCAL_LOG" ] && [ -r "$LOCAL_LOG" ]; then
    log="$LOCAL_LOG"
    source_desc="$LOCAL_LOG"
elif [ -f "$LOG_PATH" ] && [ -r "$LOG_PATH" ]; then
    log="$LOG_PATH"
    source_desc="$LOG_PATH"
else
    die "no running container $CONTAINER and no readable $LOCAL_LOG or $LOG_PATH; pass the log file as an argument (make auth-summary LOG=path/to/audit.log)"
fi

awk -v since="$since" -v top="$TOP" -v source_desc="$source_desc" '
# The value of a string field, or "" if absent. Quotes inside JSON strings are escaped (\"), so the
# unescaped form "name": "value" only ever matches a real field, never text inside another value.
function field(name,    s, prefix) {
    prefix = "[{ ]\"" name "\": \""
    if (!match($0, prefix "[^\"]*\"")) return ""
    s = substr($0, RSTART, RLENGTH)
    sub(prefix, "", s)
    sub(/"$/, "", s)
    return s
}
function row(label, value) { printf "%-34s %8d\n", label, value }
{
    ts = field("timestamp")
    if (since != "" && ts < since) next
    event = field("event")
    if (event == "") next
    if (first == "") first = ts
    last = ts
    if (event == "api_authentication") {
        auth++
        status = field("status")
        if (status == "success") ok++
        else if (status == "failure") {
            failed++
            ip = field("client_ip")
            if (ip != "") failing[ip]++
        }
    } else if (event == "access_denied") {
        denied++
        reason = field("reason")
        if (reason == "") reason = "(no reason)"
        reasons[reason]++
    } else if (event == "auth_rate_limit_exceeded") {
        limited++
        ip = field("client_ip")
        if (ip != "" && !(ip in limited_ip)) { limited_ip[ip] = 1; limited_ips++; limited_order[limited_ips] = ip }
    } else if (event == "tool_call") {
        tools++
        tool_status[field("status")]++
    }
}
END {
    print "=== AegisGitea MCP authentication summary ==="
    print "Source: " source_desc
    if (since != "") print "Since:  " since " (UTC)"
    if (first != "") print "Period: " first " .. " last
    else print "Period: no events" (since != "" ? " since then" : " in the log")
    print ""
    row("Total auth attempts:", auth)
    row("  Successful:", ok)
    row("  Failed:", failed)
    row("Requests denied:", denied)
    n = split("invalid_api_key missing_api_key query_key_not_allowed rate_limited", known, " ")
    for (i = 1; i <= n; i++) { row("  " known[i] ":", reasons[known[i]]); seen[known[i]] = 1 }
    for (r in reasons) if (!(r in seen)) row("  " r ":", reasons[r])
    row("Rate-limit events:", limited)
    row("Distinct rate-limited IPs:", limited_ips)
    for (i = 1; i <= limited_ips && i <= top; i++) print "    " limited_order[i]
    if (limited_ips > top) print "    ... and " (limited_ips - top) " more"
    row("Tool calls:", tools)
    row("  success:", tool_status["success"])
    row("  error:", tool_status["error"])
    row("  denied:", tool_status["denied"])
    print ""
    print "Top IPs by failed authentication:"
    # Selection of the top few, largest count first, ties by address: no sort pipeline needed.
    for (k = 1; k <= top; k++) {
        best = ""
        for (ip in failing)
            if (!(ip in shown) && (best == "" || failing[ip] > failing[best] || (failing[ip] == failing[best] && ip < best)))
                best = ip
        if (best == "") break
        shown[best] = 1
        printf "  %8d  %s\n", failing[best], best
    }
    if (k == 1) print "  (none)"
}
' "$log"
