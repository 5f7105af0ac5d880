-- wrk script for bench/widget_load.py: POSTs the widget's beacons (the JSON bodies in the
-- BEACONS environment variable, one a line, cycled through) as fetch() sends them, counts
-- the 204s it saw, and prints the summary as one JSON line. Latencies in microseconds.
local bodies = {}
for line in string.gmatch(os.getenv("BEACONS") or "", "[^\n]+") do
  bodies[#bodies + 1] = line
end
local threads = {}
local counter = 0
seen = 0  -- a global: done() reads it from each thread

function setup(thread)
  thread:set("offset", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  counter = offset or 0
end

function request()
  counter = counter + 1
  local body = bodies[(counter % #bodies) + 1]
  return wrk.format("POST", nil, {["Content-Type"] = "text/plain;charset=UTF-8"}, body)
end

function response(status, headers, body)
  if status == 204 then
    seen = seen + 1
  end
end

function done(summary, latency, requests)
  local no_content = 0
  for _, thread in ipairs(threads) do
    no_content = no_content + (thread:get("seen") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"no_content":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p95":%d,"p99":%d,"mean":%.1f,"max":%d}}\n',
    summary.requests, summary.duration, no_content,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.mean, latency.max))
end
