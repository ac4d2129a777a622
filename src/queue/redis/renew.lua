-- Extend a lease, but only for the delivery that holds it: a worker whose lease lapsed and was
-- reclaimed gets 0 and cannot take the job back.
-- KEYS: leases, holders, stream, entries
-- ARGV: job id, receipt, lease (ms), worker
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
local entry = redis.call('HGET', KEYS[4], ARGV[1])
if entry then
  -- Resets the entry's idle time, so XPENDING shows a live job as live.
  redis.call('XCLAIM', KEYS[3], 'workers', ARGV[4], 0, entry, 'JUSTID')
end
return 1
