-- Record the progress of job ARGV[2]: fraction ARGV[3], message ARGV[4] (none if absent).

local jk = jkey(ARGV[2])
if redis.call('EXISTS', jk) == 1 then
  if ARGV[4] then
    redis.call('HSET', jk, 'pg', ARGV[3], 'pm', ARGV[4])
  else
    redis.call('HSET', jk, 'pg', ARGV[3])
    redis.call('HDEL', jk, 'pm')
  end
end
return 0
