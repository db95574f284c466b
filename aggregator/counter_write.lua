-- The payload's counter deltas (`p.counters`: hash key index, expire-at s, {field, delta, ...},
-- version key index), each hash versioned `version` (a local the script sets before). One
-- text spliced into apply.lua and groups.lua at their marker line (aggregator/store.py).
for _, c in ipairs(p.counters) do
  local key, fields = KEYS[c[1]], c[3]
  for j = 1, #fields, 2 do redis.call('HINCRBY', key, fields[j], fields[j + 1]) end
  redis.call('EXPIREAT', key, c[2])
  redis.call('SET', KEYS[c[4]], version, 'EXAT', c[2])
end
