"""Lua run inside Redis by more than one process: one text, so the sums cannot drift apart.

Only the scripts' text lives here (the kernel imports no Redis client); each process runs them
with its own client.
"""

from __future__ import annotations

# Counter hashes (KEYS) summed field by field: {field, total, ...}, fields in the order first
# seen; totals printed whole (integers, exact as Lua numbers below 2^53). The api sums a
# window's buckets with it, the aggregator's rollup one interval's minute buckets.
SUM_HASHES = """
local total, order = {}, {}
for _, key in ipairs(KEYS) do
  local row = redis.call('HGETALL', key)
  for i = 1, #row, 2 do
    local field = row[i]
    if total[field] == nil then
      order[#order + 1] = field
      total[field] = 0
    end
    total[field] = total[field] + tonumber(row[i + 1])
  end
end
local out = {}
for _, field in ipairs(order) do
  out[#out + 1] = field
  out[#out + 1] = string.format('%.0f', total[field])
end
return out
"""
