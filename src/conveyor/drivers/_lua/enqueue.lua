-- Enqueue a batch of jobs, all or none.
-- ARGV[2]: msgpack list of [id, task, queue, priority, delay_ms, eta_ms | nil, payload_len]
-- ARGV[3]: the payloads, concatenated in the same order.
-- A call retried after a lost reply does not enqueue twice: the script is atomic, so if
-- the batch's first job exists, the whole batch was stored already (ids are fresh random
-- UUIDv7s, so the first one existing means exactly that); one EXISTS per batch instead
-- of one per job. Returns the number of jobs stored.

local now = now_ms()
local now_s = int(now)
local jobs = cmsgpack.unpack(ARGV[2])
local blob = ARGV[3]
local n = #jobs
if n == 0 or redis.call('EXISTS', B .. 'j:' .. jobs[1][1]) == 1 then
  return 0
end
local seq = redis.call('INCRBY', B .. 'seq', n) - n
local ready, delayed = {}, {}
local pos = 1
for i = 1, n do
  local j = jobs[i]
  local id, q, priority, plen = j[1], j[3], j[4], j[7]
  seq = seq + 1
  local run_at, run_at_s = now, now_s
  if j[6] then
    run_at = math.max(math.floor(j[6]), 0)
    run_at_s = int(run_at)
  elseif j[5] > 0 then
    run_at = now + math.floor(j[5])
    run_at_s = int(run_at)
  end
  local state = 'queued'
  if run_at > now then
    state = 'scheduled'
    push(delayed, q, run_at_s, id)
    count(q, 'S', 1)
  else
    push(ready, q, int(priority * PRI + run_at), member(seq, id))
  end
  redis.call('HSET', B .. 'j:' .. id, 't', j[2], 'q', q, 'p',
    string.sub(blob, pos, pos + plen - 1), 'pr', int(priority), 'ra', run_at_s, 'ea', now_s,
    's', state, 'sq', int(seq))
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
return n
