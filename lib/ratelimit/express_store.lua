-- One counter per key for HirecacheStore (lib/ratelimit/express-store.js), the fixed window
-- of rate-limit-redis: loaded once, sent with EVALSHA under the SHA1 of this file's bytes
-- (keep it ASCII). See the comment above its use in express-store.js for the operations.
local key = KEYS[1]
local op = ARGV[1]
local window = tonumber(ARGV[2])
if op == '+' then
  local hits = redis.call('INCR', key)
  local ttl = -1
  if hits < 1 then
    redis.call('SET', key, 1, 'PX', window)
    hits = 1
    ttl = window
  elseif ARGV[3] ~= '1' then
    ttl = redis.call('PTTL', key)
  end
  if ttl < 0 then
    redis.call('PEXPIRE', key, window)
    ttl = window
  end
  if ttl <= window then
    local packed = hits * (window + 1) + ttl
    if packed < 9007199254740992 then return packed end
  end
  return { hits, ttl }
elseif op == '-' then
  local v = redis.call('GET', key)
  if v == false or (tonumber(v) or 1) <= 0 then return 0 end
  redis.call('DECR', key)
  if ARGV[3] == '1' then redis.call('PEXPIRE', key, window) end
  return 0
end
if op == 'x' then
  local n = 0
  for i = 1, #KEYS do
    local ok, v = pcall(redis.call, 'GET', KEYS[i])
    if ok and v and string.match(v, '^%-?%d+$') then
      redis.call('UNLINK', KEYS[i])
      n = n + 1
    end
  end
  return n
end
local v = redis.call('GET', key)
if v == false then return false end
return { v, redis.call('PTTL', key) }
