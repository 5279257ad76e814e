-- POST one fixed JSON body on every request; print a JSON summary line when done.
--
--   wrk -t2 -c16 -d30s --latency -s benchmarks/wrk/post_json.lua URL -- BODY_FILE
--
-- Used by benchmarks/serve_speed.py. init() only loads the body: wrk then builds the request
-- once and sends the same bytes every time (no `request` function, so no Lua per request).
-- The last line printed is `WRK_JSON {...}`: request count, duration and latencies in
-- microseconds, and wrk's error counts (errors.status = responses that were not 2xx or 3xx).

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function init(args)
  local path = args[1]
  local f = assert(io.open(path, "rb"), "cannot open the body file " .. tostring(path))
  wrk.body = f:read("*a")
  f:close()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "stdev": %.1f, "max": %d, ' ..
    '"p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
