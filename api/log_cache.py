"""Agents' state logs read since a window's start, kept parsed between reads: only the logs whose
version changed are read again.

The aggregator gives each agent log a version (`keys.partition_agent_log_version_key`,
`epoch:offset` of the last step that changed it). A read asks each partition, in one script, for
its agents' log versions, and for the changes of those whose version is not the one held: the
last change before the window's start and every change from it on. The end of the window (now)
is applied here, so a log that did not change is neither read nor parsed again. A log without a
version (written by something other than the aggregator's step) is read every time.

A partition whose version (epoch, offset, group steps) is the one it had when its logs were last
read from this start, all of whose agents asked for are held, is not asked at all: only its step
writes its logs. Unless one of its logs may have expired since: a log expires
`keys.AGENT_LOG_KEEP_S` after the step that last wrote it, and no step writes a change more than an
hour before the change's own time (the aggregator refuses events further ahead), so a log holding a
change of the last `keys.AGENT_LOG_KEEP_S` less a day is still there."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
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
SURELY_KEPT_MS = (keys.AGENT_LOG_KEEP_S - 86400) * 1000  # a log with a change this recent is there
Versions = Callable[[range], Awaitable[list[Any]]]  # partitions -> their version or None each

Parsed = tuple[list[kpis.StateChange], list[kpis.StateChange]]  # before the start, from it on
# (partition, agent) -> version, log, and the reply its changes from the start were parsed from
Held = dict[tuple[int, str], tuple[bytes | None, Parsed, list[Any]]]


class LogCache:
    def __init__(self, redis: Redis, versions: Versions) -> None:
        self.redis = redis
        self.versions = versions
        self._by_start: OrderedDict[int, Held] = OrderedDict()
        # start -> partition -> (its version when its logs were read, the oldest latest change
        # of its logs then: ms, None when none holds a change)
        self._asked: dict[int, dict[int, tuple[Any, int | None]]] = {}
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
        self, by_partition: dict[int, list[str]], start_ms: int, now_ms: int | None = None
    ) -> dict[tuple[int, str], Parsed]:
        """(partition, agent) -> (the last change before `start_ms`, the changes from it on).
        Without `now_ms` (the current time) every partition is asked."""
        held = self._by_start.setdefault(start_ms, {})
        asked = self._asked.setdefault(start_ms, {})
        self._by_start.move_to_end(start_ms)
        while len(self._by_start) > MAX_STARTS:
            self._asked.pop(self._by_start.popitem(last=False)[0], None)
        versions = await self.versions(range(max(by_partition, default=-1) + 1))
        stale = {
            p: agents
            for p, agents in by_partition.items()
            if not _still(asked.get(p), versions[p], now_ms)
            or not all((p, agent) in held for agent in agents)
        }
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition, agents in stale.items():
                known = [held.get((partition, agent)) for agent in agents]
                logged = [(k[0] or "") if k else "" for k in known]
                names = self._key_names(partition, agents)
                pipe.eval(CHANGED_LOGS, len(names), *names, start_ms, *logged)
            rows = await pipe.execute()
        for (partition, agents), row in zip(stale.items(), rows, strict=True):
            for agent, reply in zip(agents, row, strict=True):
                if len(reply) > 1:  # changed: parsed anew (else what was read before)
                    kept = held.get((partition, agent))
                    since = parse_more(reply[2], kept[2], kept[1][1]) if kept else None
                    if since is None:
                        since = parse_changes(reply[2])
                    parsed = (parse_changes(reply[1]), since)
                    held[(partition, agent)] = (reply[0], parsed, reply[2])
            latest = [_latest(held[(partition, agent)][1]) for agent in agents]
            held_changes = [ms for ms in latest if ms is not None]
            asked[partition] = (versions[partition], min(held_changes, default=None))
        return {
            (p, agent): held[(p, agent)][1]
            for p, agents in by_partition.items()
            for agent in agents
        }


def _still(asked: tuple[Any, int | None] | None, version: Any, now_ms: int | None) -> bool:
    """The partition's logs are as read: the same version, and none may have expired (a log
    holding no change expires with nothing in it)."""
    if asked is None or version is None or asked[0] != version or now_ms is None:
        return False
    oldest = asked[1]
    return oldest is None or oldest >= now_ms - SURELY_KEPT_MS


def _latest(parsed: Parsed) -> int | None:
    """The time of the latest change a log holds (None: it holds none, maybe no log at all)."""
    before, since = parsed
    return max((ms for ms, _, _ in (*before, *since)), default=None)


def parse_changes(flat: Sequence[Any]) -> list[kpis.StateChange]:
    """`member, score, ...` of an agent's state log: (ms, event id, state) each."""
    out = []
    for i in range(0, len(flat), 2):
        member = flat[i].decode() if isinstance(flat[i], bytes) else flat[i]
        event_id, _, state = member.rpartition("|")
        out.append((int(float(flat[i + 1])), event_id, state))
    return out


def parse_more(
    flat: list[Any], kept_flat: list[Any], kept: list[kpis.StateChange]
) -> list[kpis.StateChange] | None:
    """`parse_changes(flat)` when `flat` starts with the reply `kept` was parsed from: a busy
    agent's log grows at its end between reads, so only what follows is parsed. None when it
    does not (a late change came in between): then it is parsed whole."""
    n = len(kept_flat)
    if n == 0 or len(flat) < n or flat[:n] != kept_flat:
        return None
    return kept + parse_changes(flat[n:]) if len(flat) > n else kept
