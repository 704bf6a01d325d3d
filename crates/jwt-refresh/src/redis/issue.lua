-- KEYS[1] family hash, KEYS[2] new token hash (same {family} slot)
-- ARGV: now, mode ('new'|'join'), subject, ttl, cap (new only), metadata ('' = none),
--       client ('' = none; new only)
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[4])
local cap
if ARGV[2] == 'new' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return {'err', 'exists'} end
  cap = tonumber(ARGV[5])
  redis.call('HSET', KEYS[1], 'sub', ARGV[3], 'cap', ARGV[5], 'rev', '0', 'lexp', '0', 'ct', ARGV[1])
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'cli', ARGV[7]) end
else
  local f = redis.call('HMGET', KEYS[1], 'sub', 'cap', 'rev', 'lexp')
  if not f[1] then return {'err', 'unknown'} end
  if f[1] ~= ARGV[3] then return {'err', 'mismatch'} end
  if f[3] == '1' then return {'err', 'revoked'} end
  cap = tonumber(f[2])
  if now >= cap then return {'err', 'expired'} end
  if now >= tonumber(f[4]) then return {'err', 'unknown'} end
end
local exp = math.min(now + ttl, cap)
redis.call('HSET', KEYS[2], 'iat', ARGV[1], 'exp', tostring(exp), 'ttl', ARGV[4], 'gen', '0', 'st', 'a')
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'md', ARGV[6]) end
expire_after(KEYS[2], exp, now)
cover(KEYS[1], exp, now)
return {'ok', ARGV[1], tostring(exp)}
