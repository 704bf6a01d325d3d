-- One rotation, atomically: check, consume, insert the successor, update the family.
-- KEYS[1] family hash, KEYS[2] presented token, KEYS[3] successor to create,
-- KEYS[4] (optional) the presented token's recorded successor, for the grace path
-- ARGV: now, grace seconds (0 = off), successor token part, recorded successor part (with KEYS[4])
local now = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
local t = redis.call('HMGET', KEYS[2], 'iat', 'exp', 'ttl', 'gen', 'st', 'nx', 'cat', 'md')
if not t[1] then return {'unknown'} end
local f = redis.call('HMGET', KEYS[1], 'sub', 'cap', 'rev')
if not f[1] then return {'unknown'} end
if now >= tonumber(t[2]) then return {'expired'} end
local md = t[8] or ''
if t[5] == 'c' then
  if grace > 0 and f[3] ~= '1' and now < tonumber(t[7]) + grace then
    -- The successor's key must be declared (Cluster): ask the caller to call again with it.
    if not KEYS[4] or ARGV[4] ~= t[6] then return {'successor', t[6]} end
    local s = redis.call('HMGET', KEYS[4], 'iat', 'exp', 'gen', 'st', 'md')
    if s[1] and s[4] == 'a' and now < tonumber(s[2]) then
      return {'replayed', f[1], t[1], t[2], t[4], md, t[6], s[1], s[2], s[3], s[5] or ''}
    end
  end
  local newly = '0'
  if f[3] ~= '1' then
    redis.call('HSET', KEYS[1], 'rev', '1')
    newly = '1'
  end
  return {'reused', newly, f[1]}
end
if t[5] ~= 'a' or f[3] == '1' then return {'revoked'} end
local nexp = math.min(now + tonumber(t[3]), tonumber(f[2]))
local ngen = tostring(tonumber(t[4]) + 1)
redis.call('HSET', KEYS[3], 'iat', ARGV[1], 'exp', tostring(nexp), 'ttl', t[3], 'gen', ngen, 'st', 'a')
if md ~= '' then redis.call('HSET', KEYS[3], 'md', md) end
expire_after(KEYS[3], nexp, now)
redis.call('HSET', KEYS[2], 'st', 'c', 'nx', ARGV[3], 'cat', ARGV[1])
cover(KEYS[1], nexp, now)
return {'rotated', f[1], t[1], t[2], t[4], md, ARGV[3], ARGV[1], tostring(nexp), ngen}
