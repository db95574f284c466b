-- The payload's counter deltas (`p.counters`: hash key index, expire-at s, {field: delta},
-- version key index), each hash versioned `version` (a local the script sets before). One
-- text spliced into apply.lua and groups.lua at their marker line (aggregator/store.py).
-- A delta is a JSON number: Lua's double holds every integer below 2^53 exactly and
-- redis.call passes it on in full (a batch's delta is far below: 2^53 ms is 285,000 years).
for _, c in ipairs(p.counters) do
  local key = KEYS[c[1]]
  for field, delta in pairs(c[3]) do redis.call('HINCRBY', key, field, delta) end
  redis.call('EXPIREAT', key, c[2])
  redis.call('SET', KEYS[c[4]], version, 'EXAT', c[2])
end
