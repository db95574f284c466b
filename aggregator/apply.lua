-- One partition's batch, applied whole or not at all (aggregator/store.py builds the payload).
-- KEYS: 1 the partition's offset, 2 its fact sheets, 3 their expiry, 4 its agent slices,
--       5 its stats, 6 its active scopes, 7 its dirty intervals, then every other key it writes,
--       which the payload names by index. No key name is computed here.
-- ARGV[1]: the payload (JSON); numbers travel as strings so Lua never rounds them (counter
--          deltas and byte lengths aside: see counter_write.lua).
-- ARGV[2]: the sheets (`p.facts`' order), then the agent slices (`p.agents`'), each JSON text
--          as many bytes long as `p.fact_bytes` and `p.agent_bytes` say: encoded once, not
--          escaped again inside ARGV[1].
-- Returns {1} when applied, {0, key, stored} on an offset conflict (someone else applied this
-- partition), {2, key, version} when a measured-FCR group changed since it was read. On a single
-- Redis the batch's groups are written here (`groups`); on a cluster, before, by groups.lua.
local p = cjson.decode(ARGV[1])

local function chunks(list, size, fn)
  for i = 1, #list, size do
    fn(unpack(list, i, math.min(i + size - 1, #list)))
  end
end

local blob, at = ARGV[2], 1
-- name, text, name, text, ...: each name with the next `lengths[i]` bytes of ARGV[2].
local function cut(names, lengths)
  local out = {}
  for i, name in ipairs(names) do
    out[2 * i - 1] = name
    out[2 * i] = string.sub(blob, at, at + lengths[i] - 1)
    at = at + lengths[i]
  end
  return out
end

-- value, name, value, name, ...: the same value (a score) for each name.
local function scored(value, names)
  local out = {}
  for i, name in ipairs(names) do
    out[2 * i - 1] = value
    out[2 * i] = name
  end
  return out
end

local current = redis.call('GET', KEYS[1]) or '-1'
if current ~= p.expected then return {0, KEYS[1], current} end
-- @groups
local sheets = cut(p.facts, p.fact_bytes)  -- in ARGV[2]'s order: the sheets, then the slices
local slices = cut(p.agents, p.agent_bytes)
chunks(sheets, 1000, function(...) redis.call('HSET', KEYS[2], ...) end)
chunks(scored(p.expires, p.facts), 1000, function(...) redis.call('ZADD', KEYS[3], ...) end)
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', p.now_ms, 'LIMIT', 0, 500)
if #gone > 0 then
  redis.call('HDEL', KEYS[2], unpack(gone))
  redis.call('ZREM', KEYS[3], unpack(gone))
end
chunks(slices, 1000, function(...) redis.call('HSET', KEYS[4], ...) end)
-- Each counter hash and agent log changed gets a version (`epoch:offset`, expiring with it):
-- readers keep what they read of it until its version changes. The epoch, set once (NX), is
-- the time of the partition's first step: state deleted and built again gets another.
redis.call('SET', KEYS[p.epoch_key], p.now_ms, 'NX')
local version = redis.call('GET', KEYS[p.epoch_key]) .. ':' .. p.last
-- @counters
-- Each agent's changes (ms, `event id|state`, ...) in one ZADD, its log then trimmed, expired
-- and versioned once: as after a ZADD, trim, expiry and version per change.
for _, l in ipairs(p.agent_log) do
  chunks(l[3], 1000, function(...) redis.call('ZADD', KEYS[l[1]], ...) end)
  redis.call('ZREMRANGEBYSCORE', KEYS[l[1]], '-inf', p.log_floor_ms)
  redis.call('EXPIRE', KEYS[l[1]], p.log_ttl)
  redis.call('SET', KEYS[l[2]], version, 'EX', p.log_ttl)
end
chunks(p.scopes, 1000, function(...) redis.call('ZADD', KEYS[6], 'GT', ...) end)
for _, d in ipairs(p.dirty) do redis.call('ZINCRBY', KEYS[7], 1, d) end
-- Each contact whose sheet this step wrote, scored by the step's offset (it only grows): the
-- history writer rolls the sheet into SQL and unmarks it only if the score has not moved.
local marks = scored(p.last, p.facts)
chunks(marks, 1000, function(...) redis.call('ZADD', KEYS[p.contacts_key], ...) end)
-- Gauge sets: every removal (members by set), then every addition (score, member, ... by set).
for _, g in ipairs(p.gauges) do
  if g[1] == 'add' then
    chunks(g[3], 1000, function(...) redis.call('ZADD', KEYS[g[2]], ...) end)
  else
    chunks(g[3], 1000, function(...) redis.call('ZREM', KEYS[g[2]], ...) end)
  end
end
redis.call('SET', KEYS[1], p.last)
if p.totals_key > 0 then
  local totals = KEYS[p.totals_key]
  for j = 1, #p.totals, 2 do redis.call('HINCRBY', totals, p.totals[j], p.totals[j + 1]) end
  for _, field in ipairs(p.totals_since) do redis.call('HSETNX', totals, field, p.now_ms) end
end
for j = 1, #p.stats, 2 do redis.call('HINCRBY', KEYS[5], p.stats[j], p.stats[j + 1]) end
redis.call('HSET', KEYS[5], 'last_apply_epoch_ms', p.now_ms)
redis.call('PUBLISH', p.channel, p.notice)
return {1}
