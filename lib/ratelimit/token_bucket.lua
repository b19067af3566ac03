-- One decision on one bucket, in one call: the Redis form of src/ratelimit/token_bucket.cc,
-- loaded once by lib/ratelimit/redis.js, which sends it with EVALSHA under the SHA1 of this
-- file's bytes (keep it ASCII).
--
-- KEYS[1] is the bucket, under a name of the limiter's own ('<keyPrefix>:tb:<key>'), and its
-- value is in a form of its own, so that a key another program wrote (rate-limiter-flexible's
-- counter under '<keyPrefix>:<key>') is never read as a bucket: a value that is not in this
-- form is refused with a FOREIGNKEY error, never misread.
-- The value is 't<TAT>' or 't<TAT>:<refused>': the theoretical arrival time (TAT) in units
-- of 1/scale microsecond, modulo 2^52 so that every number stays exact in Lua's doubles (a
-- debt is always below 2^51, so the difference to "now" decodes unambiguously), and the
-- points of consumes refused since the last admitted one (rate-limiter-flexible counts
-- refused attempts in consumedPoints; so does this, until the bucket is full again). While
-- the key is blocked: 'b:<block end>:<TAT>', the block's end in microseconds of Redis's
-- clock (-1: no end) and the TAT (empty for a full bucket). A block only adds refusal time:
-- the TAT, what the key owes, outlives it. The key expires when the block has ended and the
-- bucket is full again, so an absent key is a full bucket; when nothing is owed the key is
-- deleted (never written with PX 0). The clock is Redis's TIME: every app server sees the
-- same one.
-- ARGV: op ('c' consume, 'p' penalty, 'r' reward, 'g' get, 'b' block, 's' set the points in
-- use, ending any block, 'l' lease), cost in tokens (in
-- ms for 'b', 0 for a block without end), interval and tolerance in units, scale in units
-- per microsecond, and the block in ms that a refused consume starts (0 for none); for 'l'
-- only, ARGV[7]: the most tokens to take.
-- Replies one integer, value * 4 + status (cheaper for Redis and for the client than an
-- array): status 1 admitted (or the answer to p/r/g), value the debt before the operation;
-- 0 refused, nothing taken, value the debt; 2 blocked, value the ms until the block has
-- ended and the cost fits; -1 blocked for ever. When the key holds refused points (after a
-- refused consume, or for g/p/r on such a key), the reply is { that integer, refused }.
-- A lease ('l', lib/ratelimit/lease.js) is a consume of `cost` tokens that also takes more,
-- up to ARGV[7] in all, when they are in the bucket now: n = min(ARGV[7], the whole tokens
-- there). Refused or blocked, it does exactly what a refused consume does (a blocked key
-- leases nothing). Admitted, it replies { debt before * 4 + 1, n } and the bucket owes n
-- tokens more, written as a consume writes it.
-- A number passed to redis.call reaches Redis written exactly (below 2^53 it is an integer).
local key = KEYS[1]
local op = ARGV[1]
local M, H = 4503599627370496, 67108864
-- The cap on a debt: the C++ core's kMaxDebtUnits (2^50), which the addon exports as
-- LocalLimiter.MAX_DEBT_UNITS; lib/ratelimit/redis.js refuses to load a script whose cap
-- differs.
local MAX_DEBT = 1125899906842624
-- The cap on refused points: the C++ core's kMaxRefused (2^31 - 1), checked by redis.js too.
local MAX_REFUSED = 2147483647
local scale = tonumber(ARGV[5])
local t = redis.call('TIME')
local us = t[1] * 1000000 + t[2]
local hi = math.floor(us / H)
local now = ((hi * scale) % H * H + (us - hi * H) * scale) % M
local v = redis.call('GET', key)
local exists = v
local bend = false
local debt = 0
local refused = 0
-- A field of ours is digits ('-1' for a block without end), nothing else: tonumber alone
-- would take '1e15', 'inf' or '0x10' from a value someone else wrote.
local function int(text, signed)
  if text and string.match(text, signed and '^%-?%d+$' or '^%d+$') then return tonumber(text) end
  return nil
end
if v then
  local tag = string.byte(v, 1)
  local tat
  if tag == 116 then
    local i = string.find(v, ':', 2, true)
    if i then
      tat = int(string.sub(v, 2, i - 1))
      refused = int(string.sub(v, i + 1))
    else
      tat = int(string.sub(v, 2))
    end
  elseif tag == 98 and string.byte(v, 2) == 58 then
    local i = string.find(v, ':', 3, true)
    if i then
      bend = int(string.sub(v, 3, i - 1), true)
      tat = string.sub(v, i + 1)
      if tat == '' then tat = false else tat = int(tat) end
      if bend and bend >= 0 and bend <= us then bend = false end
    end
  end
  if tat == nil or refused == nil or (tag == 98 and bend == nil) then
    return redis.error_reply('FOREIGNKEY ' .. key .. ' holds a value that hirecache did not write; give the limiter a keyPrefix of its own')
  end
  if tat then
    debt = (tat - now) % M
    if debt >= 2251799813685248 then debt = 0 end
  end
  if debt == 0 then refused = 0 end
end
local cost = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local tolerance = tonumber(ARGV[4])
local function save(owed, ends, r)
  local px = 0
  if owed > 0 then px = math.ceil(owed / scale / 1000) end
  if ends then
    local tat = ''
    if owed > 0 then tat = string.format('%.0f', (now + owed) % M) end
    local val = 'b:' .. string.format('%.0f', ends) .. ':' .. tat
    if ends < 0 then
      redis.call('SET', key, val)
    else
      redis.call('SET', key, val, 'PX', math.max(px, math.ceil((ends - us) / 1000)))
    end
  elseif owed > 0 then
    local val = 't' .. string.format('%.0f', (now + owed) % M)
    if r > 0 then val = val .. ':' .. r end
    redis.call('SET', key, val, 'PX', px)
  elseif exists then
    redis.call('DEL', key)
  end
end
local function reply(n, r)
  if r > 0 then return { n, r } end
  return n
end
local function blocked(ends, owed, c)
  if ends < 0 then return -1 end
  local ms = math.ceil((ends - us) / 1000)
  local over = owed + c * interval - tolerance
  if over > 0 then ms = math.max(ms, math.ceil(over / scale / 1000)) end
  return ms * 4 + 2
end
if op == 's' then
  save(math.min(cost * interval, MAX_DEBT), false, 0)
  return debt * 4 + 1
end
if op == 'b' then
  local ends = -1
  if cost > 0 then ends = us + cost * 1000 end
  save(debt, ends, 0)
  return blocked(ends, debt, 0)
end
if bend then
  if op == 'p' then
    debt = math.min(debt + cost * interval, MAX_DEBT)
    save(debt, bend, 0)
    return blocked(bend, debt, 0)
  end
  if op == 'c' or op == 'l' then return blocked(bend, debt, cost) end
  return blocked(bend, debt, 0)
end
if op == 'g' then return reply(debt * 4 + 1, refused) end
local after = cost * interval
if op == 'c' or op == 'l' then
  after = debt + after
  if after > tolerance then
    local block = tonumber(ARGV[6])
    if block > 0 then
      local ends = us + block * 1000
      save(debt, ends, 0)
      return blocked(ends, debt, cost)
    end
    refused = math.min(refused + cost, MAX_REFUSED)
    save(debt, false, refused)
    return reply(debt * 4, refused)
  end
  refused = 0
  if op == 'l' then
    -- Every whole token there now, up to the most asked for (never fewer than cost, which
    -- fits); the division is checked, so a rounding can never take one token too many.
    local n = math.min(math.max(tonumber(ARGV[7]), cost), math.floor((tolerance - debt) / interval))
    if debt + n * interval > tolerance then n = n - 1 end
    save(debt + n * interval, false, 0)
    return { debt * 4 + 1, n }
  end
elseif op == 'p' then
  after = math.min(debt + after, MAX_DEBT)
else
  -- A reward forgives the refused attempts too.
  refused = 0
  after = math.max(debt - after, 0)
end
save(after, false, refused)
return reply(debt * 4 + 1, refused)
