"""The one Redis lock, as Lua: a token held for a time, taken when free, renewed by its holder.

The history writer (one among aggregator instances) and the alert evaluator (one among api
replicas) both hold a lock this way. Kept here as script text because `services` imports no Redis
client: each process runs these scripts with its own.
"""

from __future__ import annotations

# KEYS[1]: the lock; ARGV: token, time to live in ms. 1 when the caller holds it afterwards.
HOLD = """
local held = redis.call('GET', KEYS[1])
if held == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if held == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""

# KEYS[1]: the lock; ARGV[1]: token. Deletes the lock only if the caller holds it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
