-- Cancel job ARGV[2]: a waiting job becomes cancelled ("cancelled"); an active one gets a
-- cancel request its worker sees when it renews ("requested"), and a notice on
-- <B>ev:cancel tells the worker to renew now; otherwise nil.

local now = now_ms()
local id = ARGV[2]
local jk = jkey(id)
local f = redis.call('HMGET', jk, 's', 'q', 'sq')
local state = f[1]
if state == 'queued' or state == 'scheduled' or state == 'retrying' then
  local q = f[2]
  local seq = tonumber(f[3])
  if redis.call('ZREM', qkey(q, 'r'), member(seq, id)) == 0 then
    redis.call('ZREM', qkey(q, 'd'), id)
  end
  if state == 'scheduled' then
    count(q, 'S', -1)
  elseif state == 'retrying' then
    count(q, 'R', -1)
  end
  redis.call('HSET', jk, 's', 'cancelled', 'et', 'Cancelled', 'em', 'cancelled before it ran',
    'tb', '', 'f', now)
  redis.call('ZADD', qkey(q, 'c'), seq, id)
  finish(id)
  flush_counts()
  publish()
  return 'cancelled'
elseif state == 'active' then
  redis.call('HSET', jk, 'cx', '1')
  redis.call('PUBLISH', B .. 'ev:cancel', cmsgpack.pack({ id }))
  return 'requested'
end
return false
