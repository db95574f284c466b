-- One partition's state as of one instant, for the aggregator that was just assigned it.
-- KEYS: 1 its offset, 2 its fact sheets, 3 their expiry, 4 its agent slices (one slot).
-- Returns {offset or false, {contact, sheet, ...}, {contact, expiry ms, ...}, {agent, slice, ...}}.
return {
  redis.call('GET', KEYS[1]),
  redis.call('HGETALL', KEYS[2]),
  redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'),
  redis.call('HGETALL', KEYS[4]),
}
