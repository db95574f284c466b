"""Agents' state logs read since a window's start, kept parsed between reads: only the logs whose
version changed are read again.

The aggregator gives each agent log a version (`keys.partition_agent_log_version_key`,
`epoch:offset` of the last step that changed it). A read asks each partition, in one script, for
its agents' log versions, and for the changes of those whose version is not the one held: the
last change before the window's start and every change from it on. The end of the window (now)
is applied here, so a log that did not change is neither read nor parsed again. A log without a
version (written by something other than the aggregator's step) is read every time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from services import keys, kpis

# KEYS: (version, log) pairs of one partition's agents; ARGV[1]: the window's start (ms), then the
# version held for each pair ('' when none). Per pair: {version now or false} when it is the one
# held, else {version or false, the last change before the start, the changes from the start}.
CHANGED_LOGS = """
local out = {}
for i = 1, #KEYS, 2 do
  local version = redis.call('GET', KEYS[i])
  if version and version == ARGV[(i + 1) / 2 + 1] then
    out[#out + 1] = {version}
  else
    local log = KEYS[i + 1]
    out[#out + 1] = {
      version or false,
      redis.call('ZREVRANGEBYSCORE', log, '(' .. ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0, 1),
      redis.call('ZRANGEBYSCORE', log, ARGV[1], '+inf', 'WITHSCORES'),
    }
  end
end
return out
"""

MAX_STARTS = 4  # window starts kept (today's, the sliding windows' current ones)

Parsed = tuple[list[kpis.StateChange], list[kpis.StateChange]]  # before the start, from it on
Held = dict[tuple[int, str], tuple[bytes | None, Parsed]]  # (partition, agent) -> version, log


class LogCache:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._by_start: OrderedDict[int, Held] = OrderedDict()
        # partition -> (its agents at the last read, their (version, log) key names): the same
        # agents read after read, so the names are formatted once
        self._names: dict[int, tuple[list[str], list[str]]] = {}

    def _key_names(self, partition: int, agents: list[str]) -> list[str]:
        known = self._names.get(partition)
        if known is not None and known[0] == agents:
            return known[1]
        names = [
            name
            for agent in agents
            for name in (
                keys.partition_agent_log_version_key(partition, agent),
                keys.partition_agent_log_key(partition, agent),
            )
        ]
        self._names[partition] = (list(agents), names)
        return names

    async def read(
        self, by_partition: dict[int, list[str]], start_ms: int
    ) -> dict[tuple[int, str], Parsed]:
        """(partition, agent) -> (the last change before `start_ms`, the changes from it on)."""
        held = self._by_start.setdefault(start_ms, {})
        self._by_start.move_to_end(start_ms)
        while len(self._by_start) > MAX_STARTS:
            self._by_start.popitem(last=False)
        wanted = [(p, agent) for p, agents in by_partition.items() for agent in agents]
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition, agents in by_partition.items():
                versions = [
                    (known[0] or "") if (known := held.get((partition, agent))) else ""
                    for agent in agents
                ]
                names = self._key_names(partition, agents)
                pipe.eval(CHANGED_LOGS, len(names), *names, start_ms, *versions)
            rows = await pipe.execute()
        replies = [reply for row in rows for reply in row]
        out: dict[tuple[int, str], Parsed] = {}
        for cell, reply in zip(wanted, replies, strict=True):
            if len(reply) == 1:  # unchanged: what was read before
                out[cell] = held[cell][1]
            else:
                out[cell] = (parse_changes(reply[1]), parse_changes(reply[2]))
                held[cell] = (reply[0], out[cell])
        return out


def parse_changes(flat: Sequence[Any]) -> list[kpis.StateChange]:
    """`member, score, ...` of an agent's state log: (ms, event id, state) each."""
    out = []
    for i in range(0, len(flat), 2):
        member = flat[i].decode() if isinstance(flat[i], bytes) else flat[i]
        event_id, _, state = member.rpartition("|")
        out.append((int(float(flat[i + 1])), event_id, state))
    return out
