-- wrk script for the AegisGitea MCP benchmark. Configured by environment variables:
--   BENCH_METHOD      HTTP method (default POST)
--   BENCH_BODY_FILE   file holding the request body (none: no body)
--   BENCH_HEADERS     extra headers, "Name: value" separated by "\n"
--   BENCH_EXPECT      expected status (default 200); anything else counts as an error
--   BENCH_MARKER      text every good reply body contains (empty: not checked)
--   BENCH_XFF_IPS     if set (N), each request carries X-Forwarded-For: one of N distinct
--                     addresses from 198.18.0.0/15 (RFC 2544's benchmarking range), in turn
--   BENCH_XFF_OFFSET  where in those N addresses to start (default 0)
--   BENCH_DELAY_MS    if set, wait this long before each request (a paced, not a closed, loop)
--   BENCH_OUT         where done() writes its JSON summary
local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

wrk.method = os.getenv("BENCH_METHOD") or "POST"
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then wrk.body = read_file(body_file) end
local hdrs = os.getenv("BENCH_HEADERS") or ""
for line in string.gmatch(hdrs, "[^\n]+") do
  local name, value = string.match(line, "^%s*([^:]+):%s*(.-)%s*$")
  if name then wrk.headers[name] = value end
end

local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
local marker = os.getenv("BENCH_MARKER") or ""
local xff_n = tonumber(os.getenv("BENCH_XFF_IPS") or "")
local xff_offset = tonumber(os.getenv("BENCH_XFF_OFFSET") or "0")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")

-- per-thread state (each wrk thread runs its own copy of this script)
bad_status = 0
no_marker = 0
statuses = {}
local seq = 0

if xff_n then
  function request()
    seq = seq + 1
    -- consecutive request numbers from the offset on, scattered over all N (7919 is prime)
    local n = ((xff_offset + seq) * 7919 + (id or 1) * 104729) % xff_n
    local ip = string.format("198.%d.%d.%d", 18 + math.floor(n / 65536) % 2,
                             math.floor(n / 256) % 256, n % 256)
    wrk.headers["X-Forwarded-For"] = ip
    return wrk.format()
  end
end

if delay_ms then
  function delay()
    return delay_ms
  end
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= expect then
    bad_status = bad_status + 1
  elseif marker ~= "" and not string.find(body, marker, 1, true) then
    no_marker = no_marker + 1
  end
end

function done(summary, latency, requests)
  local bad, nomark, sts = 0, 0, {}
  for _, t in ipairs(threads) do
    bad = bad + t:get("bad_status")
    nomark = nomark + t:get("no_marker")
    local s = t:get("statuses")
    if s then
      for k, v in pairs(s) do sts[tostring(k)] = (sts[tostring(k)] or 0) + v end
    end
  end
  local parts = {}
  for k, v in pairs(sts) do table.insert(parts, string.format('"%s": %d', k, v)) end
  local e = summary.errors
  local out = string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "errors_connect": %d, "errors_read": %d, ' ..
    '"errors_write": %d, "errors_timeout": %d, "errors_status": %d, "bad_status": %d, ' ..
    '"no_marker": %d, "statuses": {%s}, "lat_mean_us": %.1f, "lat_max_us": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d}',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout,
    e.status, bad, nomark, table.concat(parts, ", "), latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9))
  local path = os.getenv("BENCH_OUT")
  if path and path ~= "" then
    local f = assert(io.open(path, "w"))
    f:write(out)
    f:close()
  else
    io.write(out .. "\n")
  end
end
