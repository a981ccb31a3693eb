-- The jobs ARGV[2..], each as its HGETALL (empty when unknown), after the broker's time.

local out = { now_ms() }
for i = 2, #ARGV do
  out[#out + 1] = redis.call('HGETALL', jkey(ARGV[i]))
end
return out
