-- The payload's counter deltas (`p.counters`: hash key index, expire-at s, {field: delta},
-- version key index), each hash versioned `version` (a local the script sets before). One
-- text spliced into apply.lua and groups.lua at their marker line (aggregator/store.py).
-- A delta is a JSON number: Lua's double holds every integer below 2^53 exactly and
-- redis.call passes it on in full (a batch's delta is far below: 2^53 ms is 285,000 years).
-- A hash that does not exist yet gets its deltas in one HSET (they are its values): a
-- catch-up writes most minute buckets new, and one call per field cost ~1 us each.
for _, c in ipairs(p.counters) do
  local key = KEYS[c[1]]
  if redis.call('EXISTS', key) == 0 then
    local flat, n = {}, 0
    for field, delta in pairs(c[3]) do
      flat[n + 1] = field
      flat[n + 2] = delta
      n = n + 2
    end
    for i = 1, n, 1000 do redis.call('HSET', key, unpack(flat, i, math.min(i + 999, n))) end
  else
    for field, delta in pairs(c[3]) do redis.call('HINCRBY', key, field, delta) end
  end
  redis.call('EXPIREAT', key, c[2])
  redis.call('SET', KEYS[c[4]], version, 'EXAT', c[2])
end
