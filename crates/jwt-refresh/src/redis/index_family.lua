-- KEYS[1] the subject's family index (sorted set: family id -> family's absolute expiry).
-- ARGV: now, family id, family's absolute expiry. Drops families past their expiry.
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
expire_after(KEYS[1], tonumber(last[2]), now)
return 1
