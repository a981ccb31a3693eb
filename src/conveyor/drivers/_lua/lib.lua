-- Shared by every Conveyor script: it is prepended to each of them when they are loaded.
--
-- KEYS[1] is the app's set of known queues (it routes the call to the right node in a
-- cluster); ARGV[1] is the key prefix with its hash tag, e.g. "{conveyor}:", so that every
-- key of one app lives in one hash slot. The key layout is drawn in docs/redis.md:
--
--   <B>j:<id>        HASH  one job (fields below)
--   <B>q:<q>:r       ZSET  ready: score priority * 2^44 + run_at (ms), member seq(12 hex) .. id
--   <B>q:<q>:d       ZSET  delayed (scheduled, retrying later): score run_at, member id
--   <B>q:<q>:a       ZSET  active: score lease expiry, member id
--   <B>q:<q>:s       ZSET  succeeded with a kept result: score expiry, member id
--   <B>q:<q>:x       ZSET  dead letters: score seq, member id
--   <B>q:<q>:c       ZSET  cancelled: score seq, member id
--   <B>q:<q>:n       HASH  counters: S (scheduled), R (retrying)
--   <B>queues        SET   every queue ever enqueued to
--   <B>seq, <B>tok   STRING counters (enqueue order, lease tokens)
--   <B>ev:work       channel: queues that got work (msgpack list)
--   <B>ev:done       channel: jobs that finished (msgpack list of ids)
--   <B>ev:cancel     channel: active jobs whose cancel was asked (msgpack list of ids)
--
-- Job fields: t task, q queue, p payload, pr priority, ra run_at (ms), ea enqueued_at (ms),
-- s state, a attempts and d deaths (absent: 0), sq seq, k the lease token, r result,
-- et/em/tb error type/message/traceback, pg/pm progress, f finished_at (ms), cx cancel asked.
-- A lease's expiry is its score in the queue's active set.
--
-- Lists built here keep their length in .n: Lua's # operator is a binary search.
--
-- Scripts check everything before they write: a Lua error half way would leave half a
-- change behind (Redis does not roll a script back).

local B = ARGV[1]
local PRI = 17592186044416 -- 2^44
local BATCH = 7000 -- arguments per variadic call (Lua's unpack() stack is 8000)

-- Redis turns a Lua number argument into text with "%.17g", which is slow (~0.1-0.3 µs
-- per number, more for numbers as big as a time in ms): whole numbers go to redis.call
-- as text made here instead, once per distinct value in a call.
local int_texts = {}
local function int(x)
  local s = int_texts[x]
  if not s then
    s = string.format('%d', x)
    int_texts[x] = s
  end
  return s
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function jkey(id)
  return B .. 'j:' .. id
end

local function qkey(q, kind)
  return B .. 'q:' .. q .. ':' .. kind
end

local function member(seq, id)
  return string.format('%012x', seq) .. id
end

local function zadd_many(key, pairs_)
  local n = pairs_.n or #pairs_
  for i = 1, n, BATCH do
    redis.call('ZADD', key, unpack(pairs_, i, math.min(i + BATCH - 1, n)))
  end
end

local function zrem_many(key, members)
  local n = members.n or #members
  for i = 1, n, BATCH do
    redis.call('ZREM', key, unpack(members, i, math.min(i + BATCH - 1, n)))
  end
end

-- append a (and b) to the list kept under t[name], creating it on first use
local function push(t, name, a, b)
  local list = t[name]
  if not list then
    list = { n = 0 }
    t[name] = list
  end
  local n = list.n + 1
  list[n] = a
  if b ~= nil then
    n = n + 1
    list[n] = b
  end
  list.n = n
end

-- Lease tokens: a counter that never goes back, even if the data is restored from an old
-- snapshot (it is kept above the clock in ms * 1024). Returns the last token before count
-- fresh ones.
local function take_tokens(now, count)
  local key = B .. 'tok'
  local last = redis.call('INCRBY', key, count)
  local floor = now * 1024
  if last - count < floor then
    redis.call('SET', key, string.format('%d', floor + count))
    return floor
  end
  return last - count
end

-- per-queue counter deltas, written once at the end of a script
local counts = {}
local function count(q, field, delta)
  local c = counts[q]
  if not c then
    c = { S = 0, R = 0 }
    counts[q] = c
  end
  c[field] = c[field] + delta
end

local function flush_counts()
  for q, c in pairs(counts) do
    if c.S ~= 0 then
      redis.call('HINCRBY', qkey(q, 'n'), 'S', c.S)
    end
    if c.R ~= 0 then
      redis.call('HINCRBY', qkey(q, 'n'), 'R', c.R)
    end
  end
  counts = {}
end

-- wake-ups, published once at the end of a script
local woken, woken_list = {}, {}
local function wake(q)
  if not woken[q] then
    woken[q] = true
    woken_list[#woken_list + 1] = q
  end
end

local finished, nfinished = {}, 0
local function finish(id)
  nfinished = nfinished + 1
  finished[nfinished] = id
end

local function publish()
  if #woken_list > 0 then
    redis.call('PUBLISH', B .. 'ev:work', cmsgpack.pack(woken_list))
  end
  if nfinished > 0 then
    redis.call('PUBLISH', B .. 'ev:done', cmsgpack.pack(finished))
  end
end

-- A job record the scripts did not write whole (a bug, a hand-made job, a key of another
-- type): why it can't be handled (nil if it can). f is its HMGET reply, taken with pcall,
-- f[1] its state; the numbers the scripts compute with are f[first..last].
local function broken(f, first, last)
  if f.err then
    return 'the key is not a hash'
  end
  local exists = f[1]
  for i = first, last do
    if f[i] then
      exists = true
      if not tonumber(f[i]) then
        return 'a field that should be a number is not'
      end
    elseif f[1] then
      return 'a field is missing'
    end
  end
  if not f[1] and exists then
    return 'its state is missing'
  end
  return nil
end

-- Put a broken job among the dead letters with the reason, mending its record so that it
-- can be listed, shown and purged: a worker must never stop on one bad message. A key of
-- another type is kept under <key>:broken for a human to look at. state: the one it had.
local function bury(q, id, now, why, state)
  local jk = jkey(id)
  if state == 'scheduled' then
    count(q, 'S', -1)
  elseif state == 'retrying' then
    count(q, 'R', -1)
  end
  if redis.call('TYPE', jk).ok ~= 'hash' then
    redis.call('RENAME', jk, jk .. ':broken')
    why = why .. ' (it is kept as ' .. jk .. ':broken)'
  end
  local f = redis.call('HMGET', jk, 'sq', 'pr', 'ra', 'ea', 't', 'p')
  local seq = tonumber(f[1]) or 0
  redis.call('HSET', jk, 's', 'dead', 'q', q, 'sq', int(seq), 'pr', int(tonumber(f[2]) or 5),
    'ra', int(tonumber(f[3]) or now), 'ea', int(tonumber(f[4]) or now), 't', f[5] or '',
    'p', f[6] or '', 'f', int(now), 'et', 'DecodeError',
    'em', 'the job record in Redis is broken: ' .. why, 'tb', '')
  redis.call('HDEL', jk, 'k')
  redis.call('ZADD', qkey(q, 'x'), int(seq), id)
  finish(id)
end

-- The reply of a pcall that reads one of a queue's sorted sets, or nil if that key is of
-- another type (a bug, a hand-made key): such a queue is passed over rather than failing
-- the call for every queue (stats still fails on it, so it is seen).
local function zread(r)
  if type(r) ~= 'table' or r.err then
    return nil
  end
  return r
end

-- Whether the queue's ready set can take members (checked only by a call about to add
-- some, so that a reserve with nothing to move pays no extra command).
local function ready_ok(q)
  return zread(redis.pcall('ZRANGE', qkey(q, 'r'), 0, 0)) ~= nil
end

-- Delayed jobs that are due move to the ready set; a scheduled one becomes queued.
-- Returns how many, or nil if the queue's sets are not sorted sets.
local function promote(q, now, max)
  local dk = qkey(q, 'd')
  local due = zread(redis.pcall('ZRANGEBYSCORE', dk, '-inf', now, 'LIMIT', 0, max))
  if not due then
    return nil
  end
  local n = #due
  if n == 0 then
    return 0
  end
  if not ready_ok(q) then
    return nil
  end
  local ready = { n = 0 }
  local scheduled = 0
  for i = 1, n do
    local id = due[i]
    local jk = jkey(id)
    local f = redis.pcall('HMGET', jk, 's', 'pr', 'ra', 'sq')
    local why = broken(f, 2, 4)
    if why then
      bury(q, id, now, why, f[1])
    elseif f[1] then
      if f[1] == 'scheduled' then
        redis.call('HSET', jk, 's', 'queued')
        scheduled = scheduled + 1
      end
      local m = ready.n
      ready[m + 1] = int(tonumber(f[2]) * PRI + tonumber(f[3]))
      ready[m + 2] = member(tonumber(f[4]), id)
      ready.n = m + 2
    end
  end
  zrem_many(dk, due)
  zadd_many(qkey(q, 'r'), ready)
  if scheduled > 0 then
    count(q, 'S', -scheduled)
  end
  return n
end

-- Expired leases: the job is due again at once, its death counted, its token dead.
-- Returns how many, or nil if the queue's sets are not sorted sets.
local function recover(q, now, max)
  local ak = qkey(q, 'a')
  local expired = zread(redis.pcall('ZRANGEBYSCORE', ak, '-inf', now, 'LIMIT', 0, max))
  if not expired then
    return nil
  end
  local n = #expired
  if n == 0 then
    return 0
  end
  if not ready_ok(q) then
    return nil
  end
  local ready = { n = 0 }
  for i = 1, n do
    local id = expired[i]
    local jk = jkey(id)
    local f = redis.pcall('HMGET', jk, 's', 'pr', 'sq')
    local why = broken(f, 2, 3)
    if why then
      bury(q, id, now, why, f[1])
    elseif f[1] == 'active' then
      redis.call('HSET', jk, 's', 'queued', 'ra', int(now))
      redis.call('HINCRBY', jk, 'd', 1)
      redis.call('HDEL', jk, 'k')
      local m = ready.n
      ready[m + 1] = int(tonumber(f[2]) * PRI + now)
      ready[m + 2] = member(tonumber(f[3]), id)
      ready.n = m + 2
    end
  end
  zrem_many(ak, expired)
  zadd_many(qkey(q, 'r'), ready)
  return n
end

