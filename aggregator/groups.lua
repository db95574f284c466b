-- One partition's batch's measured-FCR groups in one slot, applied whole or not at all, before
-- that batch's own step (apply.lua); aggregator/store.py builds the payload.
-- A group's key and the counters it changes share its shard's slot (keys.group_shard), so this
-- runs on a cluster too. Each group records the batch (`s`: source partition -> last offset):
-- a replay of the batch finds its groups applied, and the planner leaves them.
-- KEYS: every key the payload names, by index. No key name is computed here.
-- ARGV[1]: the payload (JSON); numbers travel as strings so Lua never rounds them.
-- Returns {1} when applied, {2, key, version} when a group changed since it was read.
local p = cjson.decode(ARGV[1])

-- @groups
-- Each shard's counter hashes get a version of their own (`epoch:gN`): readers add the
-- shard's count of group steps to its (epoch, offset), which these writes do not move.
for _, s in ipairs(p.shards) do
  redis.call('SET', KEYS[s.epoch_key], p.now_ms, 'NX')
  local version = redis.call('GET', KEYS[s.epoch_key]) .. ':g' .. redis.call('INCR', KEYS[s.gv_key])
  for _, c in ipairs(s.counters) do
    local key, fields = KEYS[c[1]], c[3]
    for j = 1, #fields, 2 do redis.call('HINCRBY', key, fields[j], fields[j + 1]) end
    redis.call('EXPIREAT', key, c[2])
    redis.call('SET', KEYS[c[4]], version, 'EXAT', c[2])
  end
  for j = 1, #s.scopes, 2 do
    redis.call('ZADD', KEYS[s.scopes_key], 'GT', s.scopes[j], s.scopes[j + 1])
  end
  for _, d in ipairs(s.dirty) do redis.call('ZINCRBY', KEYS[s.dirty_key], 1, d) end
end
return {1}
