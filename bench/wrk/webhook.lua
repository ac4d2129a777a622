-- wrk script for the ingest benchmark: POSTs one constant, pre-signed body with a unique delivery
-- id per request (thread id + counter + a run nonce), so no request is a duplicate.
--
--   wrk -t2 -c64 -d10s --latency -s webhook.lua http://127.0.0.1:PORT/PATH -- \
--       BODY_FILE DELIVERY_HEADER NONCE 'Name: value' 'Name: value' ...
--
-- At the end it prints one line `BENCH_JSON {...}` with the counts and latency percentiles (µs).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  body = f:read("*a")
  f:close()
  delivery_header = args[2]
  nonce = tonumber(args[3])
  headers = {}
  for i = 4, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  counter = 0
end

function request()
  counter = counter + 1
  -- GUID-shaped, like GitHub's X-GitHub-Delivery.
  headers[delivery_header] = string.format("%08x-%04x-4000-8000-%012x", nonce, tid, counter)
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
