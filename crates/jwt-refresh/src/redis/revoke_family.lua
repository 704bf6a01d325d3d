-- KEYS[1] family hash. 1 if it existed unrevoked and is now revoked.
if redis.call('HGET', KEYS[1], 'rev') == '0' then
  redis.call('HSET', KEYS[1], 'rev', '1')
  return 1
end
return 0
