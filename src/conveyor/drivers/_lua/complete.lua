-- Apply outcomes. ARGV[2]: a flat msgpack list, nine entries per outcome:
--   id, token, kind, result_len (-1: none), result_ttl_ms, delay_ms,
--   error_type ("": none), error_message, traceback
-- ARGV[3]: the results, concatenated in the same order.
-- kind: 1 succeeded, 2 retry, 3 snooze, 4 dead, 5 cancelled, 6 release.
-- Returns 1 or 0 per outcome: 0 when the token no longer holds the lease (fenced off).
-- An outcome that was applied already with the same token (a call retried after a lost
-- reply) answers 1 and changes nothing.

local now = now_ms()
local now_s = int(now)
local o = cmsgpack.unpack(ARGV[2])
local blob = ARGV[3]
local pos = 1
local reply = {}
local done_active, ready, delayed, kept, dead, cancelled = {}, {}, {}, {}, {}, {}

-- the new state, one more field, and the outcome's error (or none); had_error: the job
-- carries an earlier attempt's error
local function set_error(jk, i, state, field, value, had_error)
  if o[i + 6] ~= '' then
    redis.call('HSET', jk, 's', state, field, value, 'et', o[i + 6], 'em', o[i + 7],
      'tb', o[i + 8])
  else
    redis.call('HSET', jk, 's', state, field, value)
    if had_error then
      redis.call('HDEL', jk, 'et', 'em', 'tb')
    end
  end
end

-- the job's sequence number; a record that lost it (a bug, a hand-made job) sorts first
local function seq_of(jk)
  return int(tonumber(redis.call('HGET', jk, 'sq')) or 0)
end

local k = 0
for i = 1, #o, 9 do
  k = k + 1
  local id, token, kind, rlen = o[i], o[i + 1], o[i + 2], o[i + 3]
  local result = nil
  if rlen >= 0 then
    result = string.sub(blob, pos, pos + rlen - 1)
    pos = pos + rlen
  end
  local jk = B .. 'j:' .. id
  local f = redis.call('HMGET', jk, 's', 'k', 'q', 'et')
  local had_error = f[4] ~= false
  local state = f[1]
  if state == 'active' and f[2] == token then
    reply[k] = 1
    local q = f[3]
    push(done_active, q, id)
    if kind == 1 then
      local ttl = math.floor(o[i + 4])
      if ttl > 0 then
        local expires = now + ttl
        if result then
          redis.call('HSET', jk, 's', 'succeeded', 'f', now_s, 'r', result)
        else
          redis.call('HSET', jk, 's', 'succeeded', 'f', now_s)
        end
        if had_error then -- an earlier attempt's
          redis.call('HDEL', jk, 'et', 'em', 'tb')
        end
        redis.call('PEXPIREAT', jk, int(expires))
        push(kept, q, int(expires), id)
      else
        redis.call('DEL', jk)
      end
      finish(id)
    elseif kind == 4 then
      set_error(jk, i, 'dead', 'f', now_s, had_error)
      push(dead, q, seq_of(jk), id)
      finish(id)
    elseif kind == 5 then
      set_error(jk, i, 'cancelled', 'f', now_s, had_error)
      push(cancelled, q, seq_of(jk), id)
      finish(id)
    else
      local delay = math.max(math.floor(o[i + 5]), 0)
      local run_at = now + delay
      local run_at_s = int(run_at)
      if kind == 2 then
        set_error(jk, i, 'retrying', 'ra', run_at_s, had_error)
        count(q, 'R', 1)
      else -- snooze, release: the attempt is given back
        redis.call('HINCRBY', jk, 'a', -1)
        if delay > 0 then
          redis.call('HSET', jk, 's', 'scheduled', 'ra', run_at_s)
          count(q, 'S', 1)
        else
          redis.call('HSET', jk, 's', 'queued', 'ra', run_at_s)
        end
      end
      if delay > 0 then
        push(delayed, q, run_at_s, id)
      else
        local g = redis.call('HMGET', jk, 'pr', 'sq')
        push(ready, q, int((tonumber(g[1]) or 5) * PRI + run_at), member(tonumber(g[2]) or 0, id))
      end
      wake(q)
    end
  elseif state and f[2] == token then
    reply[k] = 1
  else
    reply[k] = 0
  end
end

for q, ids in pairs(done_active) do
  zrem_many(qkey(q, 'a'), ids)
end
for q, z in pairs(ready) do
  zadd_many(qkey(q, 'r'), z)
end
for q, z in pairs(delayed) do
  zadd_many(qkey(q, 'd'), z)
end
for q, z in pairs(kept) do
  local sk = qkey(q, 's')
  zadd_many(sk, z)
  redis.call('ZREMRANGEBYSCORE', sk, '-inf', now_s) -- forget results that expired
end
for q, z in pairs(dead) do
  zadd_many(qkey(q, 'x'), z)
end
for q, z in pairs(cancelled) do
  zadd_many(qkey(q, 'c'), z)
end
flush_counts()
publish()
return reply
