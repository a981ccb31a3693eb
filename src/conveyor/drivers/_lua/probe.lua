-- Is anything due in queues ARGV[2..]? Returns {now, 1, now} if so (a ready job, a due
-- delayed job, an expired lease to recover), else {now, 0, the earliest time one of these
-- may be due, or -1}.

local now = now_ms()
local next_at = -1
for i = 2, #ARGV do
  local q = ARGV[i]
  local ready = redis.pcall('ZCARD', qkey(q, 'r'))
  if type(ready) == 'number' and ready > 0 then
    return { now, 1, now }
  end
  for _, kind in ipairs({ 'd', 'a' }) do
    local first = zread(redis.pcall('ZRANGE', qkey(q, kind), 0, 0, 'WITHSCORES'))
    if first and #first > 0 then
      local at = tonumber(first[2])
      if at <= now then
        return { now, 1, now }
      end
      if next_at < 0 or at < next_at then
        next_at = at
      end
    end
  end
end
return { now, 0, next_at }
