-- End a delivery: finish the job, schedule a retry, or dead-letter it; only the lease holder may.
-- KEYS: job hash, stream, leases, holders, entries, outstanding, delayed, dead, sequence
-- ARGV: job id, receipt, mode (finish|retry|defer|dead), the job's new state (JSON),
--       updated_at (JSON), retry delay (ms)
local id = ARGV[1]
if redis.call('HGET', KEYS[4], id) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[4], id)
redis.call('ZREM', KEYS[3], id)
local entry = redis.call('HGET', KEYS[5], id)
if entry then
  redis.call('XACK', KEYS[2], 'workers', entry)
  redis.call('XDEL', KEYS[2], entry)
  redis.call('HDEL', KEYS[5], id)
end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'updated_at', ARGV[5])
local mode = ARGV[3]
if mode == 'defer' then
  -- Waiting for an earlier job is not a delivery.
  redis.call('HINCRBY', KEYS[1], 'deliveries', -1)
end
if mode == 'retry' or mode == 'defer' then
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  redis.call('ZADD', KEYS[7], now + tonumber(ARGV[6]), id)
else
  redis.call('SREM', KEYS[6], id)
  if mode == 'dead' then
    redis.call('ZADD', KEYS[8], redis.call('INCR', KEYS[9]), id)
  end
end
return 1
