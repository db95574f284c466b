"""Rolls each agent's time per state per 15-minute interval into SQL (`agent_intervals`).

Agents' state logs live in Redis for 8 days; cost per case and contacts per logged-in hour need
logged-in time for as long as history is kept. Every closed interval is rolled once for every
agent (a watermark in Redis moves past it), and the open one is written as it grows, so "today"
has it too. A state change that arrives late marks its agent's interval dirty in the
aggregator's atomic step; the history writer hands those marks here and the agent's rows are
computed again from that interval up to the agent's next change (`reroll_starts`). A row is a
pure function of the log.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from services import agentstates, intervals, keys, kpis

INTERVAL_MS = keys.INTERVAL_SECONDS * 1000
LOG_KEEP_S = 8 * 86400  # as aggregator/store.py keeps the logs
MAX_INTERVALS_PER_CYCLE = 96  # one day of intervals per pass while catching up


def interval_row(
    start_s: int, changes: Sequence[kpis.StateChange], end_ms: int | None = None
) -> dict[str, int]:
    """Milliseconds per state of one agent in [start, start + 15 min), or until `end_ms` (now,
    in the open interval); logged in is every state but offline. Changes after the end do not
    count; the last one before the start does."""
    end = start_s * 1000 + INTERVAL_MS if end_ms is None else end_ms
    by_state = kpis.state_ms(changes, start_s * 1000, end)
    row = {f"{state}_ms": by_state.get(state, 0) for state in intervals.AGENT_STATE_COLUMNS}
    row["logged_in_ms"] = sum(ms for state, ms in by_state.items() if state != agentstates.OFFLINE)
    return row


def rows_for(
    agent: str, starts: Iterable[int], changes: Sequence[kpis.StateChange], now_s: int
) -> tuple[list[dict[str, Any]], list[int]]:
    """Rows to upsert and interval starts whose row is now empty (to delete), for the agent."""
    ordered = sorted(set(changes))
    times = [at for at, _, _ in ordered]
    upsert: list[dict[str, Any]] = []
    empty: list[int] = []
    for start in starts:
        end_ms = min(start * 1000 + INTERVAL_MS, now_s * 1000)
        # Only the last change before the interval and those inside it count: the rows of a
        # long log cost its length once, not once per interval.
        first = bisect.bisect_left(times, start * 1000)
        inside = ordered[max(0, first - 1) : bisect.bisect_left(times, end_ms, first)]
        row = interval_row(start, inside, end_ms)
        if any(row.values()):
            upsert.append(
                {"start_s": start, "agent": agent, **row, "extra": "{}", "updated_s": now_s}
            )
        else:
            empty.append(start)
    return upsert, empty


def reroll_starts(late: Iterable[int], change_ms: Sequence[int], until_s: int) -> set[int]:
    """The rolled intervals (before `until_s`, the watermark) whose rows a late change in each
    `late` interval can move: that interval, and the next ones up to the interval of the
    agent's first change at or after its end, from which on the state is that change's.
    `change_ms` sorted. Re-rolling every interval up to the watermark instead made a replay
    of a day's backlog rewrite each agent's day once per pass (docs/capacity.md)."""
    out: set[int] = set()
    width = keys.INTERVAL_SECONDS
    for start in late:
        stop = until_s
        after = bisect.bisect_left(change_ms, (start + width) * 1000)
        if after < len(change_ms):
            stop = min(stop, keys.interval_start_s(change_ms[after] / 1000) + width)
        out.update(range(start, stop, width))
    return out


class AgentTimeRoller:
    """The history writer's helper for agent time; runs under the writer's lock."""

    def __init__(self, redis: Redis, engine: AsyncEngine) -> None:
        self.redis = redis
        self.engine = engine
        self.rows_written = 0

    async def cycle(self, now_s: float, dirty: Sequence[tuple[int, str]]) -> None:
        """Roll newly closed intervals for every agent, the open one as it stands, and the
        agents whose marks say their logs changed in intervals already rolled."""
        now = int(now_s)
        open_start = keys.interval_start_s(now)
        rolled = await self.redis.get(keys.AGENT_TIME_ROLLED)
        partitions = range(int(await self.redis.get(keys.PARTITIONS) or 0))
        agents = await self._agents(partitions)
        if rolled is None:  # first run: from the oldest change any log keeps
            first = await self._oldest(agents, now)
        else:
            first = max(int(rolled), keys.interval_start_s(now - LOG_KEEP_S))
        last = min(open_start, first + (MAX_INTERVALS_PER_CYCLE - 1) * keys.INTERVAL_SECONDS)
        wanted: dict[str, list[int]] = {
            agent: list(range(first, last + 1, keys.INTERVAL_SECONDS)) for agent in agents
        }
        late: dict[str, list[int]] = {}  # agent -> intervals already rolled that a change hit
        for start, agent in dirty:
            if start < first:
                late.setdefault(agent, []).append(start)
        reads = {agent: min([*wanted.get(agent, []), *late.get(agent, [])]) for agent in wanted}
        reads.update({agent: min(starts) for agent, starts in late.items() if agent not in reads})
        if reads:
            logs = await self._logs(partitions, agents, reads)
            for agent, starts in late.items():
                changes = sorted({ms for ms, _, _ in logs.get(agent, [])})
                spans = reroll_starts(starts, changes, first)
                wanted[agent] = sorted({*wanted.get(agent, []), *spans})
            await self._write(wanted, logs, now)
        # Closed intervals are done; the open one is written again next time, as it grows.
        await self.redis.set(keys.AGENT_TIME_ROLLED, min(last + keys.INTERVAL_SECONDS, open_start))

    async def _oldest(self, agents: Mapping[str, list[int]], now: int) -> int:
        """The interval of the oldest change in any agent's log, now's if there is none."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent, parts in agents.items():
                for partition in parts:
                    pipe.zrange(
                        keys.partition_agent_log_key(partition, agent), 0, 0, withscores=True
                    )
            replies = await pipe.execute()
        oldest = [int(score) // 1000 for reply in replies for _, score in reply]
        floor = now - LOG_KEEP_S
        return keys.interval_start_s(max(floor, min(oldest, default=now)))

    async def _agents(self, partitions: range) -> dict[str, list[int]]:
        """Agent -> the partitions that keep a state log of it (their agent slices name it)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.hkeys(keys.partition_agents_key(partition))
            rows = await pipe.execute()
        out: dict[str, list[int]] = {}
        for partition, names in zip(partitions, rows, strict=True):
            for name in names:
                out.setdefault(_text(name), []).append(partition)
        return out

    async def _logs(
        self, partitions: range, agents: Mapping[str, list[int]], reads: Mapping[str, int]
    ) -> dict[str, list[kpis.StateChange]]:
        """Each agent's changes from the last one before `reads[agent]` (an interval) on."""
        cells = [
            (agent, partition, start)
            for agent, start in reads.items()
            for partition in agents.get(agent, partitions)
        ]
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent, partition, start in cells:
                key = keys.partition_agent_log_key(partition, agent)
                pipe.zrevrangebyscore(key, f"({start * 1000}", "-inf", 0, 1, withscores=True)
                pipe.zrangebyscore(key, start * 1000, "+inf", withscores=True)
            replies = await pipe.execute()
        out: dict[str, list[kpis.StateChange]] = {agent: [] for agent in reads}
        for n, (agent, _, _) in enumerate(cells):
            for member, score in [*replies[2 * n], *replies[2 * n + 1]]:
                event_id, _, state = _text(member).rpartition(keys.SEP)
                out[agent].append((int(score), event_id, state))
        return out

    async def _write(
        self, wanted: Mapping[str, list[int]], logs: Mapping[str, list[kpis.StateChange]], now: int
    ) -> None:
        table = intervals.agent_intervals
        upserts: list[dict[str, Any]] = []
        empties: list[tuple[str, int]] = []
        for agent, starts in wanted.items():
            rows, empty = rows_for(agent, starts, logs.get(agent, []), now)
            upserts += rows
            empties += [(agent, start) for start in empty]
        async with self.engine.begin() as conn:
            for agent, start in empties:
                await conn.execute(
                    delete(table).where(table.c.agent == agent, table.c.start_s == start)
                )
            for chunk in range(0, len(upserts), 1000):
                await conn.execute(_upsert(conn.dialect.name), upserts[chunk : chunk + 1000])
        self.rows_written += len(upserts)


def _upsert(dialect: str) -> Any:
    table = intervals.agent_intervals
    stmt: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    updated = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
    return stmt.on_conflict_do_update(index_elements=["start_s", "agent"], set_=updated)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
