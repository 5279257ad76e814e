-- POST a different JSON body on each request, cycling over the lines of a file (one JSON
-- body per line); print a JSON summary line when done.
--
--   wrk -t2 -c16 -d30s --latency -s benchmarks/wrk/post_json_lines.lua URL -- BODIES_FILE [MS]
--
-- With MS, each connection waits MS milliseconds after an answer before it sends the next
-- request (wrk's delay()), which paces the load below what the server can take; wrk's
-- latency is timed from the write of a request, so the wait is not part of it.
--
-- Used by benchmarks/feature_lookup_speed.py. init() reads the file and formats every request
-- once (wrk.format), so a request costs one table index in Lua, the same for every body file.
-- Each wrk thread starts at its own offset of the list, so the threads do not send the same
-- body at the same time. The last line printed is `WRK_JSON {...}`, as post_json.lua prints.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local threads = 0

function setup(thread)
  thread:set("index", threads)
  threads = threads + 1
end

local requests = {}
local next_request = 1

function init(args)
  local path = args[1]
  local f = assert(io.open(path, "rb"), "cannot open the bodies file " .. tostring(path))
  for line in f:lines() do
    if #line > 0 then
      requests[#requests + 1] = wrk.format(nil, nil, nil, line)
    end
  end
  f:close()
  assert(#requests > 0, "no bodies in " .. tostring(path))
  -- `index` is the global setup() gave this thread (thread:set)
  next_request = ((tonumber(index) or 0) * 7919) % #requests + 1
  local pause = tonumber(args[2])
  if pause and pause > 0 then
    -- wrk looks for a global delay() after init() has run
    delay = function() return pause end
  end
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
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
