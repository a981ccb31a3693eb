-- Extend leases by ARGV[2] ms. ARGV[3]: msgpack list of [id, token].
-- Returns {lost ids, ids whose cancel was asked for}.

local now = now_ms()
local lease_until = int(now + tonumber(ARGV[2]))
local held = cmsgpack.unpack(ARGV[3])
local lost, cancel = {}, {}
local leases = {}
for i = 1, #held do
  local id, token = held[i][1], held[i][2]
  local f = redis.call('HMGET', jkey(id), 's', 'k', 'q', 'cx')
  local expiry = false
  if f[1] == 'active' and f[2] == token then
    expiry = redis.call('ZSCORE', qkey(f[3], 'a'), id)
  end
  if expiry and tonumber(expiry) > now then
    push(leases, f[3], lease_until, id)
    if f[4] then
      cancel[#cancel + 1] = id
    end
  else
    lost[#lost + 1] = id
  end
end
for q, z in pairs(leases) do
  zadd_many(qkey(q, 'a'), z)
end
return { lost, cancel }
