-- Delete up to ARGV[4] jobs of queue ARGV[3] in state ARGV[2].
-- Returns {jobs deleted, 1 if none are left else 0}.

local now = now_ms()
local status, q = ARGV[2], ARGV[3]
local max = tonumber(ARGV[4])

local sets = { succeeded = 's', dead = 'x', cancelled = 'c', active = 'a' }
local kind = sets[status]
if kind then
  local key = qkey(q, kind)
  if status == 'succeeded' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  end
  local ids = redis.call('ZRANGE', key, 0, max - 1)
  for i = 1, #ids do
    redis.call('DEL', jkey(ids[i]))
    finish(ids[i])
  end
  zrem_many(key, ids)
  publish()
  return { #ids, #ids < max and 1 or 0 }
end

promote(q, now, 10000)
local deleted = 0
local complete = 1
for _, zkind in ipairs({ 'r', 'd' }) do
  local skip = (status == 'queued' and zkind == 'd') or (status == 'scheduled' and zkind == 'r')
  local key = qkey(q, zkind)
  local start = 0
  local doomed = {}
  while not skip and complete == 1 do
    local items = redis.call('ZRANGE', key, start, start + 499)
    if #items == 0 then
      break
    end
    for i = 1, #items do
      local id = items[i]
      if zkind == 'r' then
        id = string.sub(id, 13)
      end
      local jk = jkey(id)
      if redis.call('HGET', jk, 's') == status then
        redis.call('DEL', jk)
        doomed[#doomed + 1] = items[i]
        finish(id)
        deleted = deleted + 1
        if deleted >= max then
          complete = 0
          break
        end
      end
    end
    start = start + 500
  end
  zrem_many(key, doomed)
end
if status == 'scheduled' then
  count(q, 'S', -deleted)
elseif status == 'retrying' then
  count(q, 'R', -deleted)
end
flush_counts()
publish()
return { deleted, complete }
