-- Lease up to ARGV[2] due jobs for ARGV[3] ms, taking the queues ARGV[4..] in order.
-- First, in each queue, expired leases are recovered and due delayed jobs promoted: all
-- in this one atomic call, so two workers reclaiming at once can never both get a job.
-- Returns a flat list: id, queue index (1-based), payload, attempts, token, priority,
-- deaths; seven entries per job. A job whose record is broken goes to the dead letters.

local limit = tonumber(ARGV[2])
local now = now_ms()
local lease_until = int(now + tonumber(ARGV[3]))
local out, nout = {}, 0
local n = 0
local token = nil
for qi = 4, #ARGV do
  if n >= limit then
    break
  end
  local q = ARGV[qi]
  local popped = {}
  if recover(q, now, 1000) and promote(q, now, 1000) then
    popped = zread(redis.pcall('ZPOPMIN', qkey(q, 'r'), limit - n)) or {}
  end
  local np = #popped
  if np > 0 then
    if not token then
      token = take_tokens(now, limit)
    end
    local leased, nleased = {}, 0
    local retrying = 0
    for i = 1, np, 2 do
      local id = string.sub(popped[i], 13)
      local jk = B .. 'j:' .. id
      local f = redis.pcall('HMGET', jk, 's', 'p', 'a', 'd', 'q')
      local state = f[1]
      if f.err or (state and not (f[2] and f[5])) then
        bury(q, id, now, f.err and 'the key is not a hash' or 'a field is missing', state)
      elseif state then
        if state == 'retrying' then
          retrying = retrying + 1
        end
        local attempts = (tonumber(f[3]) or 0) + 1
        token = token + 1
        redis.call('HSET', jk, 's', 'active', 'a', int(attempts), 'k', string.format('%d', token))
        leased[nleased + 1] = lease_until
        leased[nleased + 2] = id
        nleased = nleased + 2
        out[nout + 1] = id
        out[nout + 2] = qi - 3
        out[nout + 3] = f[2]
        out[nout + 4] = attempts
        out[nout + 5] = token
        out[nout + 6] = math.floor(popped[i + 1] / PRI)
        out[nout + 7] = tonumber(f[4]) or 0
        nout = nout + 7
        n = n + 1
      end
    end
    leased.n = nleased
    zadd_many(qkey(q, 'a'), leased)
    if retrying > 0 then
      count(q, 'R', -retrying)
    end
  end
end
flush_counts()
return out
