-- Enqueue a batch of jobs, all or none.
-- ARGV[2]: msgpack list of [id, task, queue, priority, delay_ms, eta_ms | nil, payload_len]
-- ARGV[3]: the payloads, concatenated in the same order.
-- A job whose id exists already is left as it is, so a call retried after a lost reply
-- does not enqueue twice. Returns the number of jobs stored.

local now = now_ms()
local jobs = cmsgpack.unpack(ARGV[2])
local blob = ARGV[3]
local n = #jobs
local seq = redis.call('INCRBY', B .. 'seq', n) - n
local ready, delayed = {}, {}
local pos = 1
local stored = 0
for i = 1, n do
  local j = jobs[i]
  local id, q, priority, plen = j[1], j[3], j[4], j[7]
  local jk = B .. 'j:' .. id
  if redis.call('EXISTS', jk) == 0 then
    seq = seq + 1
    stored = stored + 1
    local run_at = now
    if j[6] then
      run_at = math.max(math.floor(j[6]), 0)
    elseif j[5] > 0 then
      run_at = now + math.floor(j[5])
    end
    local state = 'queued'
    if run_at > now then
      state = 'scheduled'
      push(delayed, q, run_at, id)
      count(q, 'S', 1)
    else
      push(ready, q, priority * PRI + run_at, member(seq, id))
    end
    redis.call('HSET', jk, 't', j[2], 'q', q, 'p', string.sub(blob, pos, pos + plen - 1),
      'pr', priority, 'ra', run_at, 'ea', now, 's', state, 'sq', seq)
  end
  pos = pos + plen
end
for q, z in pairs(ready) do
  zadd_many(qkey(q, 'r'), z)
  wake(q)
end
for q, z in pairs(delayed) do
  zadd_many(qkey(q, 'd'), z)
  wake(q)
end
if #woken_list > 0 then
  redis.call('SADD', KEYS[1], unpack(woken_list))
end
flush_counts()
publish()
return stored
