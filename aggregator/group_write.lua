-- The payload's measured-FCR groups (`p.groups`: key index, version read, new version, members,
-- seen; `p.group_ttl`): every version checked, then every group written. One text spliced into
-- apply.lua and groups.lua at their marker line (aggregator/store.py), so the check the
-- single Redis runs in the step and the cluster runs per shard cannot drift apart.
for _, g in ipairs(p.groups) do
  local version = redis.call('HGET', KEYS[g[1]], 'v') or '0'
  if version ~= g[2] then return {2, KEYS[g[1]], version} end
end
for _, g in ipairs(p.groups) do
  redis.call('HSET', KEYS[g[1]], 'v', g[3], 'm', g[4], 's', g[5])
  redis.call('EXPIRE', KEYS[g[1]], p.group_ttl)
end
