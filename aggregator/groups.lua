-- One partition's batch's measured-FCR groups of one shard (one slot), applied whole or not at all, before
-- that batch's own step (apply.lua); aggregator/store.py builds the payload.
-- A group's key and the counters it changes share its shard's slot (keys.group_shard), so this
-- runs on a cluster too. Each group records the batch (`s`: source partition -> last offset):
-- a replay of the batch finds its groups applied, and the planner leaves them.
-- KEYS: every key the payload names, by index. No key name is computed here.
-- ARGV[1]: the payload (JSON); numbers travel as strings so Lua never rounds them (counter
--          deltas aside: see counter_write.lua).
-- Returns {1} when applied, {2, key, version} when a group changed since it was read.
local p = cjson.decode(ARGV[1])

-- @groups
-- The shard's counter hashes get a version of their own (`epoch:gN`): readers add the
-- shard's count of group steps to its (epoch, offset), which these writes do not move.
redis.call('SET', KEYS[p.epoch_key], p.now_ms, 'NX')
local version = redis.call('GET', KEYS[p.epoch_key]) .. ':g' .. redis.call('INCR', KEYS[p.gv_key])
-- @counters
for j = 1, #p.scopes, 2 do
  redis.call('ZADD', KEYS[p.scopes_key], 'GT', p.scopes[j], p.scopes[j + 1])
end
for _, d in ipairs(p.dirty) do redis.call('ZINCRBY', KEYS[p.dirty_key], 1, d) end
return {1}
