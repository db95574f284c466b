-- Measured-FCR group sheets, read in one call instead of one HMGET each (aggregator/store.py,
-- Store.read_groups): on a cluster one call per group shard, whose keys share one slot.
-- KEYS: the groups' hashes. Returns per key {v, m, s}, nil for a field (or key) absent.
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HMGET', key, 'v', 'm', 's')
end
return out
