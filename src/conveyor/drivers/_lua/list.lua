-- Jobs of queue ARGV[3] in state ARGV[2], skipping ARGV[4], at most ARGV[5] of them.
-- Returns the broker's time, then per job: group, score, id, HGETALL. Finished jobs come in
-- their set's order (dead and cancelled: enqueue order; succeeded: expiry); active ones
-- all of them (the caller sorts); waiting jobs in the order they would run.

local now = now_ms()
local status, q = ARGV[2], ARGV[3]
local offset, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local out = { now }

local function emit(group, score, id)
  out[#out + 1] = group
  out[#out + 1] = score
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', jkey(id))
end

local sets = { succeeded = 's', dead = 'x', cancelled = 'c', active = 'a' }
local kind = sets[status]
if kind then
  local key = qkey(q, kind)
  local start, stop = offset, offset + limit - 1
  if status == 'succeeded' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  elseif status == 'active' then
    start, stop = 0, -1
  end
  if stop >= start or stop == -1 then
    local items = redis.call('ZRANGE', key, start, stop, 'WITHSCORES')
    for i = 1, #items, 2 do
      emit(0, items[i + 1], items[i])
    end
  end
  return out
end

promote(q, now, 10000)
flush_counts()
local skip, taken = offset, 0
local scans = { { 1, 'r' }, { 2, 'd' } }
for _, scan in ipairs(scans) do
  local group, zkind = scan[1], scan[2]
  local wanted = not (status == 'queued' and zkind == 'd')
    and not (status == 'scheduled' and zkind == 'r')
  local key = qkey(q, zkind)
  local start = 0
  while wanted and taken < limit do
    local items = redis.call('ZRANGE', key, start, start + 499, 'WITHSCORES')
    if #items == 0 then
      break
    end
    for i = 1, #items, 2 do
      local id = items[i]
      if zkind == 'r' then
        id = string.sub(id, 13)
      end
      if redis.call('HGET', jkey(id), 's') == status then
        if skip > 0 then
          skip = skip - 1
        else
          emit(group, items[i + 1], id)
          taken = taken + 1
          if taken >= limit then
            break
          end
        end
      end
    end
    start = start + 500
  end
end
return out
