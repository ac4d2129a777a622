-- Claim the next job for a worker: a lapsed lease first, then a due retry, then a new job.
-- Lease times come from Redis's own clock, so workers' clocks do not matter.
-- KEYS: stream, waiting, delayed, leases, holders, entries, sequence, outstanding
-- ARGV: job key prefix, worker, lease (ms), updated_at (JSON), the running state (JSON)
-- Returns {'claimed', receipt, the state it was claimed from (JSON), field, value, ...} or {'empty', ms until a lease lapses or a retry
-- comes due (-1: none), the stream's last id (to block on)}.
redis.pcall('XGROUP', 'CREATE', KEYS[1], 'workers', '0', 'MKSTREAM')
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local function forget(id)
  redis.call('ZREM', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
  redis.call('SREM', KEYS[8], id)
  local entry = redis.call('HGET', KEYS[6], id)
  if entry then
    redis.call('XACK', KEYS[1], 'workers', entry)
    redis.call('XDEL', KEYS[1], entry)
    redis.call('HDEL', KEYS[6], id)
  end
end

local function take(id)
  local job = ARGV[1] .. id
  if redis.call('EXISTS', job) == 0 then
    forget(id)
    return nil
  end
  redis.call('HINCRBY', job, 'deliveries', 1)
  local claimed_from = redis.call('HGET', job, 'state')
  redis.call('HSET', job, 'state', ARGV[5], 'updated_at', ARGV[4])
  -- A fresh receipt per delivery fences off a worker whose lease lapsed, even under the same name.
  local receipt = tostring(redis.call('INCR', KEYS[7]))
  redis.call('HSET', KEYS[5], id, receipt)
  redis.call('ZADD', KEYS[4], now + tonumber(ARGV[3]), id)
  local entry = redis.call('HGET', KEYS[6], id)
  if entry then
    -- Keeps XPENDING telling operators who holds the entry.
    redis.call('XCLAIM', KEYS[1], 'workers', ARGV[2], 0, entry, 'JUSTID')
  end
  local reply = {'claimed', receipt, claimed_from}
  for _, item in ipairs(redis.call('HGETALL', job)) do
    reply[#reply + 1] = item
  end
  return reply
end

-- Bounded, in case several candidates lost their records.
for _ = 1, 16 do
  local id
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 1)
  local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1)
  if lapsed[1] then
    id = lapsed[1]
  elseif due[1] then
    id = due[1]
    redis.call('ZREM', KEYS[3], id)
  else
    local read = redis.call('XREADGROUP', 'GROUP', 'workers', ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
    if read then
      local entry = read[1][2][1]
      id = entry[2][2]
      redis.call('HSET', KEYS[6], id, entry[1])
      redis.call('ZREM', KEYS[2], id)
    end
  end
  if not id then
    break
  end
  local reply = take(id)
  if reply then
    return reply
  end
end

local wake = -1
for _, key in ipairs({KEYS[4], KEYS[3]}) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if first[2] then
    local due_in = math.max(tonumber(first[2]) - now, 1)
    if wake < 0 or due_in < wake then
      wake = due_in
    end
  end
end
local last_id = '0-0'
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then
    last_id = info[i + 1]
  end
end
return {'empty', tostring(wake), last_id}
