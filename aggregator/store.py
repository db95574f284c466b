"""One atomic Redis step per polled batch: fact sheets, counter deltas, gauges and offsets.

The partition offsets are compared and set in the same MULTI/EXEC (WATCH on each partition's
offset key), so a consumer that lost its partition in a rebalance, or a replay after a crash,
can never apply a batch twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from services import keys

from .engine import Plan
from .facts import AgentFacts, ContactFacts

Planner = Callable[[Mapping[str, ContactFacts | None], Mapping[str, AgentFacts | None]], Plan]


@dataclass(frozen=True, slots=True)
class Positions:
    """Per partition: the offset we believe was applied last, and the batch's last offset."""

    topic: str
    expected: dict[int, int]
    last: dict[int, int]


class OffsetConflict(Exception):
    """Redis holds other offsets than this consumer expected: someone else applied them."""

    def __init__(self, stored: dict[int, int]) -> None:
        super().__init__(f"stored offsets {stored}")
        self.stored = stored


def offset_key(topic: str, partition: int) -> str:
    return f"{keys.offsets_key(topic)}:{partition}"


class Store:
    """The aggregator's only writer to Redis."""

    def __init__(self, redis: Redis, facts_ttl_s: int, bucket_ttl_s: int) -> None:
        self.redis = redis
        self.facts_ttl_s = facts_ttl_s
        self.bucket_ttl_s = bucket_ttl_s

    async def load_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """Last applied offset per partition, -1 where nothing was applied yet."""
        values = await self.redis.mget([offset_key(topic, p) for p in partitions])
        return {p: int(v) if v is not None else -1 for p, v in zip(partitions, values, strict=True)}

    async def reset_offset(self, topic: str, partition: int) -> None:
        await self.redis.set(offset_key(topic, partition), -1)

    async def apply(
        self, positions: Positions, contacts: list[str], agents: list[str], planner: Planner
    ) -> Plan:
        """Read old facts, plan, and write everything in one transaction; raise on conflict."""
        off_keys = [offset_key(positions.topic, p) for p in positions.expected]
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(*off_keys)
                stored, old_facts, old_agents = await self._read(pipe, off_keys, contacts, agents)
                wanted = dict(positions.expected)
                current = dict(zip(positions.expected, stored, strict=True))
                if current != wanted:
                    raise OffsetConflict(current)
                plan = planner(old_facts, old_agents)
                pipe.multi()  # type: ignore[no-untyped-call]
                self._write(pipe, plan, positions)
                await pipe.execute()
            except WatchError as exc:
                raise OffsetConflict(
                    await self.load_offsets(positions.topic, list(wanted))
                ) from exc
        return plan

    async def _read(
        self, pipe: Pipeline, off_keys: list[str], contacts: list[str], agents: list[str]
    ) -> tuple[list[int], dict[str, ContactFacts | None], dict[str, AgentFacts | None]]:
        values = await pipe.mget(off_keys + [keys.facts_key(c) for c in contacts])
        agent_values = await pipe.hmget(keys.AGENTS, agents) if agents else []
        stored = [int(v) if v is not None else -1 for v in values[: len(off_keys)]]
        facts = {
            c: ContactFacts.from_json(json.loads(v)) if v is not None else None
            for c, v in zip(contacts, values[len(off_keys) :], strict=True)
        }
        agent_facts = {
            a: AgentFacts.from_json(json.loads(v)) if v is not None else None
            for a, v in zip(agents, agent_values, strict=True)
        }
        return stored, facts, agent_facts

    def _write(self, pipe: Pipeline, plan: Plan, positions: Positions) -> None:
        for contact, facts in plan.facts.items():
            pipe.set(keys.facts_key(contact), json.dumps(facts.to_json()), ex=self.facts_ttl_s)
        if plan.agents:
            pipe.hset(
                keys.AGENTS, mapping={a: json.dumps(f.to_json()) for a, f in plan.agents.items()}
            )
        self._write_counters(pipe, plan)
        self._write_gauges(pipe, plan)
        for partition, last in positions.last.items():
            pipe.set(offset_key(positions.topic, partition), last)
        pipe.hincrby(keys.STATS, "events_applied", plan.events)
        pipe.hincrby(keys.STATS, "batches_applied", 1)
        if plan.dead:
            pipe.hincrby(keys.STATS, "dead_letters", len(plan.dead))
        pipe.hset(keys.STATS, "last_apply_epoch_ms", int(time.time() * 1000))
        pipe.publish(keys.CHANGES_CHANNEL, str(sum(positions.last.values())))

    def _write_counters(self, pipe: Pipeline, plan: Plan) -> None:
        scopes: dict[str, int] = {}
        intervals = {keys.interval_start_s(minute) for minute, _ in plan.deltas}
        if intervals:
            # History (SQL) re-reads these intervals: a late event re-upserts a closed interval.
            pipe.zadd(keys.DIRTY_INTERVALS, {str(i): i for i in intervals})
        for (res, start, scope), fields in rollup(plan.deltas).items():
            key = keys.counter_key(res, start, scope)
            for name, value in fields.items():
                pipe.hincrby(key, name, value)
            pipe.expireat(key, start + keys.RESOLUTIONS[res] + self.bucket_ttl_s)
            if res == "m":
                scopes[scope] = max(scopes.get(scope, 0), start)
        if scopes:
            pipe.zadd(keys.SCOPES, scopes, gt=True)

    def _write_gauges(self, pipe: Pipeline, plan: Plan) -> None:
        for move in plan.gauges:
            for scope in move.old.scopes:
                pipe.zrem(keys.waiting_key(scope), move.contact)
                pipe.zrem(keys.active_key(scope), move.contact)
            for scope in move.new.scopes:
                if move.new.waiting_since_ms is not None:
                    pipe.zadd(keys.waiting_key(scope), {move.contact: move.new.waiting_since_ms})
                else:
                    pipe.zrem(keys.waiting_key(scope), move.contact)
                if move.new.active_since_ms is not None:
                    pipe.zadd(keys.active_key(scope), {move.contact: move.new.active_since_ms})
                else:
                    pipe.zrem(keys.active_key(scope), move.contact)


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
