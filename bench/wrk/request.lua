-- One kind of request, repeated by wrk, and a summary wrk prints when it is done.
--
-- The request comes from the environment, so one script serves every measured path:
--   BENCH_METHOD     GET (default), POST, PUT
--   BENCH_HEADERS    header lines, "Name: value" separated by newlines (Authorization,
--                    Cookie, Content-Type)
--   BENCH_BODY_FILE  a file whose bytes are sent as the body of every request
--
-- wrk counts answers of 400 and above as errors; bench/run.py checks one answer of each kind
-- before it starts wrk, since a redirect (to /login, say) would otherwise pass unnoticed.

wrk.method = os.getenv("BENCH_METHOD") or "GET"

for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.-)%s*$")
  if name then
    wrk.headers[name] = value
  end
end

local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local file = assert(io.open(body_file, "rb"))
  wrk.body = file:read("*a")
  file:close()
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "BENCH_RESULT {\"requests\": %d, \"duration_us\": %d, \"bytes\": %d, " ..
    "\"errors\": {\"connect\": %d, \"read\": %d, \"write\": %d, \"status\": %d, \"timeout\": %d}, " ..
    "\"latency_us\": {\"p50\": %d, \"p95\": %d, \"p99\": %d, \"max\": %d, \"mean\": %.1f}}\n",
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean
  ))
end
