-- KEYS[1] family hash, KEYS[2] token hash. Read-only snapshot of both.
local t = redis.call('HMGET', KEYS[2], 'iat', 'exp', 'gen', 'st', 'nx', 'cat', 'md')
if not t[1] then return {} end
local f = redis.call('HMGET', KEYS[1], 'sub', 'rev')
if not f[1] then return {} end
return {t[1], t[2], t[3], t[4], t[5] or '', t[6] or '', t[7] or '', f[1], f[2]}
