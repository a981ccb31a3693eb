-- Queue dead jobs again with a fresh attempt count.
-- ARGV[2]: queue ("" = any, with ids), ARGV[3]: how many at most (for "all"),
-- ARGV[4]: "ids" (the ids follow in ARGV[5..]) or "all" (the dead letters of queue ARGV[2]).
-- Returns {jobs revived, 1 if nothing is left to do else 0}.

local now = now_ms()
local only = ARGV[2]
local ready = {}
local revived = 0

local function revive(id)
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 's', 'q', 'pr', 'sq')
  if f[1] ~= 'dead' or (only ~= '' and f[2] ~= only) then
    return
  end
  local q = f[2]
  redis.call('HSET', jk, 's', 'queued', 'a', 0, 'd', 0, 'ra', now)
  redis.call('HDEL', jk, 'et', 'em', 'tb', 'f', 'k', 'l', 'cx')
  redis.call('ZREM', qkey(q, 'x'), id)
  push(ready, q, tonumber(f[3]) * PRI + now, member(tonumber(f[4]), id))
  wake(q)
  revived = revived + 1
end

local complete = 1
if ARGV[4] == 'ids' then
  for i = 5, #ARGV do
    revive(ARGV[i])
  end
else
  local max = tonumber(ARGV[3])
  local xk = qkey(only, 'x')
  local ids = redis.call('ZRANGE', xk, 0, max - 1)
  for i = 1, #ids do
    revive(ids[i])
  end
  zrem_many(xk, ids) -- what was not revived was not a dead job any more: a stale entry
  if #ids >= max then
    complete = 0
  end
end
for q, z in pairs(ready) do
  zadd_many(qkey(q, 'r'), z)
end
publish()
return { revived, complete }
