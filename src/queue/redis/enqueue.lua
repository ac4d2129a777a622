-- Dedup, store and make claimable in one step: a redelivered webhook never makes a second job.
-- KEYS: dedup key, job hash, stream, waiting, outstanding, recent, sequence, entries, dead,
--       thread list, thread's last job
-- ARGV: job id, dedup ttl (s), recent cap, job key prefix, in a thread (1|0), then the record's
--       field/value pairs
local id = ARGV[1]
local seen = redis.call('GET', KEYS[1])
if seen then
  return {'duplicate', seen}
end
redis.call('SET', KEYS[1], id, 'EX', ARGV[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 6))
if ARGV[5] == '1' then
  redis.call('RPUSH', KEYS[10], id)
  redis.call('SET', KEYS[11], id, 'EX', ARGV[2])
end
redis.pcall('XGROUP', 'CREATE', KEYS[3], 'workers', '0', 'MKSTREAM')
local entry = redis.call('XADD', KEYS[3], '*', 'job', id)
redis.call('HSET', KEYS[8], id, entry)
local sequence = redis.call('INCR', KEYS[7])
redis.call('ZADD', KEYS[4], sequence, id)
redis.call('SADD', KEYS[5], id)
redis.call('ZADD', KEYS[6], sequence, id)

-- Forget the oldest settled jobs beyond the cap; jobs still in the queue or dead stay.
local cap = tonumber(ARGV[3])
for _, old in ipairs(redis.call('ZRANGE', KEYS[6], 0, -(cap + 1))) do
  if redis.call('SISMEMBER', KEYS[5], old) == 0 and not redis.call('ZSCORE', KEYS[9], old) then
    redis.call('DEL', ARGV[4] .. old)
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -(cap + 1))

return {'accepted', tostring(redis.call('ZRANK', KEYS[4], id) + 1)}
