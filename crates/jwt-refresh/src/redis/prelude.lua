-- jwt-refresh: shared helpers. `now` always comes from the caller's clock (never TIME), so
-- expiry decisions are testable; key TTLs are set relative to it so keys vanish on their own.
local function expire_after(key, at, now)
  local ttl = at - now + 1
  if ttl < 1 then ttl = 1 end
  redis.call('EXPIRE', key, ttl)
end
-- Extends the family's lifetime to cover a token expiring at `exp`, issued
-- `now` (its latest token: the session's "last refreshed").
local function cover(fam, exp, now)
  redis.call('HSET', fam, 'lat', tostring(now))
  local lexp = tonumber(redis.call('HGET', fam, 'lexp') or '0')
  if exp > lexp then
    redis.call('HSET', fam, 'lexp', tostring(exp))
    lexp = exp
  end
  expire_after(fam, lexp, now)
end
