-- Counts per known queue: {queue, ready, delayed, active, succeeded, dead, cancelled,
-- scheduled, retrying} each. Due delayed jobs are promoted first so that the counts are
-- exact; expired results are forgotten.

local now = now_ms()
local out = {}
local queues = redis.call('SMEMBERS', KEYS[1])
for _, q in ipairs(queues) do
  promote(q, now, 10000)
  flush_counts()
  redis.call('ZREMRANGEBYSCORE', qkey(q, 's'), '-inf', now)
  local c = redis.call('HMGET', qkey(q, 'n'), 'S', 'R')
  out[#out + 1] = {
    q,
    redis.call('ZCARD', qkey(q, 'r')),
    redis.call('ZCARD', qkey(q, 'd')),
    redis.call('ZCARD', qkey(q, 'a')),
    redis.call('ZCARD', qkey(q, 's')),
    redis.call('ZCARD', qkey(q, 'x')),
    redis.call('ZCARD', qkey(q, 'c')),
    tonumber(c[1] or 0),
    tonumber(c[2] or 0),
  }
end
return out
