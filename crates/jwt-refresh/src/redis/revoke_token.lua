-- KEYS[1] token hash. 1 if it was active and is now revoked.
if redis.call('HGET', KEYS[1], 'st') == 'a' then
  redis.call('HSET', KEYS[1], 'st', 'r')
  return 1
end
return 0
