-- Put a dead job back at the end of the queue with a fresh delivery count.
-- KEYS: job hash, stream, waiting, outstanding, dead, sequence, entries
-- ARGV: job id, updated_at (JSON), the state of a new job (JSON)
local id = ARGV[1]
if redis.call('ZREM', KEYS[5], id) == 0 or redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'deliveries', 0, 'updated_at', ARGV[2])
redis.pcall('XGROUP', 'CREATE', KEYS[2], 'workers', '0', 'MKSTREAM')
local entry = redis.call('XADD', KEYS[2], '*', 'job', id)
redis.call('HSET', KEYS[7], id, entry)
redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[6]), id)
redis.call('SADD', KEYS[4], id)
return 1
