"""One atomic Redis step per polled batch: fact sheets, counter deltas, gauges and offsets.

The step is a Lua script, so Redis runs it whole or not at all. It first compares each
partition's stored offset with the one this consumer read with the old facts, and refuses the
batch when they differ: a consumer that lost its partition in a rebalance, or a replay after a
crash, can never apply a batch twice. One script call instead of thousands of HINCRBYs is also
what makes the aggregator fast (see `make bench`).

Keys are computed inside the script from its payload, so this needs a single Redis primary (with
replicas if wanted), not Redis Cluster.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from services import keys

from .engine import Plan
from .facts import AgentFacts, ContactFacts
from .repeats import GroupSheet


class BatchPlanner(Protocol):
    """What the store needs from the engine, given the state it read."""

    def groups_needed(self, old_facts: Mapping[str, ContactFacts | None]) -> set[str]: ...

    def plan(
        self,
        old_facts: Mapping[str, ContactFacts | None],
        old_agents: Mapping[str, AgentFacts | None],
        old_groups: Mapping[str, GroupSheet | None],
    ) -> Plan: ...


APPLY_SCRIPT = """
local p = cjson.decode(ARGV[1])
for _, o in ipairs(p.offsets) do
  local current = redis.call('GET', o[1]) or '-1'
  if current ~= o[2] then return {0, o[1], current} end
end
for _, g in ipairs(p.groups) do
  local version = redis.call('HGET', g[1], 'v') or '0'
  if version ~= g[2] then return {2, g[1], version} end
end
for _, g in ipairs(p.groups) do
  redis.call('HSET', g[1], 'v', g[3], 'm', g[4])
  redis.call('EXPIRE', g[1], p.group_ttl)
end
for _, f in ipairs(p.facts) do redis.call('SET', f[1], f[2], 'EX', p.facts_ttl) end
for _, a in ipairs(p.agents) do redis.call('HSET', p.agents_key, a[1], a[2]) end
for _, c in ipairs(p.counters) do
  local fields = c[3]
  for j = 1, #fields, 2 do redis.call('HINCRBY', c[1], fields[j], fields[j + 1]) end
  redis.call('EXPIREAT', c[1], c[2])
end
for _, l in ipairs(p.agent_log) do
  redis.call('ZADD', l[1], l[3], l[2])
  redis.call('ZREMRANGEBYSCORE', l[1], '-inf', p.log_floor_ms)
  redis.call('EXPIRE', l[1], p.log_ttl)
end
for _, s in ipairs(p.scopes) do redis.call('ZADD', p.scopes_key, 'GT', s[2], s[1]) end
for _, d in ipairs(p.dirty) do redis.call('ZINCRBY', p.dirty_key, 1, d) end
for _, g in ipairs(p.gauges) do
  if g[1] == 'add' then redis.call('ZADD', g[2], g[4], g[3]) else redis.call('ZREM', g[2], g[3]) end
end
for _, o in ipairs(p.offsets) do redis.call('SET', o[1], o[3]) end
for _, s in ipairs(p.stats) do redis.call('HINCRBY', p.stats_key, s[1], s[2]) end
redis.call('HSET', p.stats_key, 'last_apply_epoch_ms', p.now_ms)
redis.call('PUBLISH', p.channel, p.notice)
return {1}
"""


AGENT_LOG_KEEP_S = 8 * 86400  # state changes kept for time-in-state reads (today, 24h, a week)


@dataclass(frozen=True, slots=True)
class Positions:
    """Per partition: the offset we believe was applied last, and the batch's last offset."""

    topic: str
    expected: dict[int, int]
    last: dict[int, int]


class OffsetConflict(Exception):
    """Redis holds other offsets than this consumer expected: someone else applied them."""


class GroupConflict(Exception):
    """A customer's group sheet changed since it was read (another partition's batch): re-plan."""


def offset_key(topic: str, partition: int) -> str:
    return f"{keys.offsets_key(topic)}:{partition}"


class Store:
    """The aggregator's only writer to Redis."""

    def __init__(
        self, redis: Redis, facts_ttl_s: int, bucket_ttl_s: int, group_ttl_s: int = 9 * 86400
    ) -> None:
        self.redis = redis
        self.group_ttl_s = group_ttl_s
        self.facts_ttl_s = facts_ttl_s
        self.bucket_ttl_s = bucket_ttl_s
        self._apply = redis.register_script(APPLY_SCRIPT)

    async def load_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """Last applied offset per partition, -1 where nothing was applied yet."""
        values = await self.redis.mget([offset_key(topic, p) for p in partitions])
        return {p: int(v) if v is not None else -1 for p, v in zip(partitions, values, strict=True)}

    async def reset_offset(self, topic: str, partition: int) -> None:
        await self.redis.set(offset_key(topic, partition), -1)

    async def apply(
        self, positions: Positions, contacts: list[str], agents: list[str], batch: BatchPlanner
    ) -> Plan:
        """Read old state, plan, and write everything in one script call; raise on conflict."""
        stored, old_facts, old_agents = await self._read(positions, contacts, agents)
        if stored != positions.expected:
            raise OffsetConflict(f"stored {stored}, expected {positions.expected}")
        old_groups = await self._read_groups(sorted(batch.groups_needed(old_facts)))
        plan = batch.plan(old_facts, old_agents, old_groups)
        body = self.payload(plan, positions)
        body["groups"] = [
            [keys.group_key(g), str(_version(old_groups.get(g))), str(s.version),
             json.dumps(s.to_json()["m"])]
            for g, s in plan.groups.items()
        ]  # fmt: skip
        result = await self._apply(args=[json.dumps(body, separators=(",", ":"))])
        if int(result[0]) == 2:
            raise GroupConflict(f"{_text(result[1])} is at version {_text(result[2])}")
        if int(result[0]) != 1:
            raise OffsetConflict(f"{_text(result[1])} holds {_text(result[2])}")
        return plan

    async def _read_groups(self, groups: list[str]) -> dict[str, GroupSheet | None]:
        if not groups:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for group in groups:
                pipe.hmget(keys.group_key(group), ["v", "m"])
            rows = await pipe.execute()
        out: dict[str, GroupSheet | None] = {}
        for group, (version, members) in zip(groups, rows, strict=True):
            out[group] = None if version is None else GroupSheet.from_json(
                {"v": int(version), "m": json.loads(members or "{}")}
            )  # fmt: skip
        return out

    async def _read(
        self, positions: Positions, contacts: list[str], agents: list[str]
    ) -> tuple[dict[int, int], dict[str, ContactFacts | None], dict[str, AgentFacts | None]]:
        """Offsets, fact sheets and agent sheets in one round trip."""
        partitions = list(positions.expected)
        off_keys = [offset_key(positions.topic, p) for p in partitions]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.mget(off_keys + [keys.facts_key(c) for c in contacts])
            if agents:
                pipe.hmget(keys.AGENTS, agents)
            replies = await pipe.execute()
        values, agent_values = replies[0], (replies[1] if agents else [])
        stored = {
            p: int(v) if v is not None else -1 for p, v in zip(partitions, values, strict=False)
        }
        facts = {
            c: ContactFacts.from_json(json.loads(v)) if v is not None else None
            for c, v in zip(contacts, values[len(off_keys) :], strict=True)
        }
        agent_facts = {
            a: AgentFacts.from_json(json.loads(v)) if v is not None else None
            for a, v in zip(agents, agent_values, strict=True)
        }
        return stored, facts, agent_facts

    def payload(self, plan: Plan, positions: Positions) -> dict[str, Any]:
        """Everything the script writes; numbers as strings so Lua never rounds them."""
        counters, scopes = self._counters(plan)
        oldest = time.time() - self.bucket_ttl_s  # older intervals' minute buckets are gone
        dirty = sorted(
            {
                keys.dirty_member(keys.interval_start_s(minute), scope)
                for minute, scope in plan.deltas
                if minute + 60 > oldest
            }
        )
        stats = [["events_applied", str(plan.events)], ["batches_applied", "1"]]
        if plan.dead:
            stats.append(["dead_letters", str(len(plan.dead))])
        return {
            "offsets": [
                [offset_key(positions.topic, p), str(positions.expected[p]), str(last)]
                for p, last in positions.last.items()
            ],
            "facts": [[keys.facts_key(c), json.dumps(f.to_json())] for c, f in plan.facts.items()],
            "facts_ttl": str(self.facts_ttl_s),
            "group_ttl": str(self.group_ttl_s),
            "groups": [],
            "agents": [[a, json.dumps(f.to_json())] for a, f in plan.agents.items()],
            "agents_key": keys.AGENTS,
            "agent_log": [
                [keys.agent_log_key(agent), f"{event_id}|{state}", str(ms)]
                for agent, event_id, state, ms in plan.agent_log
            ],
            "log_floor_ms": str(int((time.time() - AGENT_LOG_KEEP_S) * 1000)),
            "log_ttl": str(AGENT_LOG_KEEP_S),
            "counters": counters,
            "scopes": [[scope, str(minute)] for scope, minute in scopes.items()],
            "scopes_key": keys.SCOPES,
            "dirty": dirty,
            "dirty_key": keys.DIRTY_INTERVALS,
            "gauges": gauge_ops(plan),
            "stats": stats,
            "stats_key": keys.STATS,
            "now_ms": str(int(time.time() * 1000)),
            "channel": keys.CHANGES_CHANNEL,
            "notice": str(sum(positions.last.values())),
        }

    def _counters(self, plan: Plan) -> tuple[list[Any], dict[str, int]]:
        counters: list[Any] = []
        scopes: dict[str, int] = {}
        now = time.time()
        for (res, start, scope), fields in rollup(plan.deltas).items():
            expire = start + keys.RESOLUTIONS[res] + self.bucket_ttl_s
            if expire <= now:
                continue  # a bucket already gone (e.g. a repeat contact days later): nothing to fix
            key = keys.counter_key(res, start, scope)
            flat = [item for name, value in fields.items() for item in (name, str(value))]
            counters.append([key, str(expire), flat])
            if res == "m":
                scopes[scope] = max(scopes.get(scope, 0), start)
        return counters, scopes


def gauge_ops(plan: Plan) -> list[list[str]]:
    """Sorted-set moves for contacts waiting and open now, in the order they must run."""
    ops: list[list[str]] = []
    for move in plan.gauges:
        for scope in move.old.scopes:
            ops.append(["rem", keys.waiting_key(scope), move.contact])
            ops.append(["rem", keys.active_key(scope), move.contact])
        for scope in move.new.scopes:
            for key, since in (
                (keys.waiting_key(scope), move.new.waiting_since_ms),
                (keys.active_key(scope), move.new.active_since_ms),
            ):
                if since is not None:
                    ops.append(["add", key, move.contact, str(since)])
    return ops


def rollup(
    deltas: Mapping[tuple[int, str], Mapping[str, int]],
) -> dict[tuple[str, int, str], dict[str, int]]:
    """Minute deltas plus their sums per hour bucket, zeros dropped."""
    out: dict[tuple[str, int, str], dict[str, int]] = {}
    for (minute, scope), fields in deltas.items():
        for res in keys.RESOLUTIONS:
            cell = out.setdefault((res, keys.bucket_start_s(minute, res), scope), {})
            for name, value in fields.items():
                cell[name] = cell.get(name, 0) + value
    return {cell: {n: v for n, v in f.items() if v} for cell, f in out.items() if any(f.values())}


def _version(sheet: GroupSheet | None) -> int:
    return 0 if sheet is None else sheet.version


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
