"""Rolls closed 15-minute intervals from the live Redis buckets into SQL history.

Every batch the aggregator applies bumps a version on each `interval|scope` it touched (in the
same atomic step as the counters). This task re-reads such a cell's minute buckets whole, upserts
the row, and removes the mark only if its version did not move meanwhile; a late event simply
marks the cell again. So a row is always the live total for its interval, never a running sum
that a crash could double. One writer at a time, under a Redis lock, across aggregator instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services import intervals, keys, locks, lua
from services.settings import Settings

from . import contact_rows
from .agent_time import AgentTimeRoller

log = logging.getLogger("ccpulse.history")

MAX_CELLS_PER_CYCLE = 2000
LOCK_MS = 30_000

_FORGET = """
local n = 0
for i = 1, #ARGV, 2 do
  local v = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if v and tonumber(v) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
"""

SUM_MINUTES = lua.SUM_HASHES  # one partition's minute buckets of one interval (one slot)


def closed_cells(
    dirty: Sequence[tuple[str, float]], now_s: float, oldest_s: float
) -> tuple[list[tuple[int, str, float]], list[tuple[str, float]]]:
    """Split marks into closed cells to roll, and cells whose buckets already expired (dropped)."""
    ready: list[tuple[int, str, float]] = []
    expired: list[tuple[str, float]] = []
    for member, version in dirty:
        start, scope = keys.parse_dirty_member(member)
        if start < oldest_s:
            expired.append((member, version))
        elif start + keys.INTERVAL_SECONDS <= now_s:
            ready.append((start, scope, version))
    return ready, expired


def no_lag() -> int:
    return 0


class HistoryWriter:
    """`live_lag`: records the live path (the runner, same event loop) has still to apply; while
    it is more than a poll, a pass that is behind does not start the next one at once."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        engine: AsyncEngine,
        live_lag: Callable[[], int] = no_lag,
    ) -> None:
        self.settings = settings
        self.live_lag = live_lag
        self.redis = redis
        self.engine = engine
        self.token = secrets.token_hex(8)
        self.clock = settings.clock()
        self._lock = redis.register_script(locks.HOLD)
        self._forget = redis.register_script(_FORGET)
        self._last_prune = 0.0
        self.rows_written = 0
        self.agent_time = AgentTimeRoller(redis, engine)
        self._agent_time_s = -math.inf  # when agents' time was last rolled (`_agent_time`)
        topic = settings.topic(keys.TOPIC_EVENTS)
        self.contacts = contact_rows.ContactRoller(
            redis, engine, self._forget, lambda p: keys.partition_offset_key(topic, p)
        )
        self.contact_rows_written = 0

    async def run(self, stopping: asyncio.Event) -> None:
        """Roll every few seconds until stopped; an outage only delays history, marks persist.
        While the live path is behind, a pass starts once a catch-up interval: passes every
        5 s took a tenth of one aggregator's CPU in a catch-up (docs/capacity.md), re-rolling
        intervals whose minutes were still coming in."""
        started = -math.inf  # when the last pass started: the first one runs at once
        while not stopping.is_set():
            now_s = self.clock.now()
            if not self.live_behind() or (
                now_s - started >= self.settings.history_catch_up_interval_seconds
            ):
                started = now_s
                await self._passes(now_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.settings.history_interval_seconds)

    async def _passes(self, now_s: float) -> None:
        """One pass, and more at once while cells or contacts are left and live is not behind."""
        try:
            while (
                await self.cycle(now_s) >= MAX_CELLS_PER_CYCLE or self.contacts.behind
            ) and not self.live_behind():
                now_s = self.clock.now()  # a backlog: keep rolling without waiting
        except (RedisError, SQLAlchemyError, OSError) as exc:
            log.warning("history rollup failed, will retry: %s", exc)

    def live_behind(self) -> bool:
        """The live path is more than a poll behind: history waits for its next interval instead
        of rolling pass after pass on the loop (and the core) the live figures need. Measured:
        passes back to back during 5,000 events/s took a fifth of the loop and the runner's
        backlog grew to seconds (docs/capacity.md); history only comes later, marks persist."""
        return self.live_lag() > self.settings.max_poll_records

    async def cycle(self, now_s: float) -> int:
        """One pass: returns how many cells were rolled (0 when another instance holds the lock)."""
        self.contacts.behind = False  # set again by this pass's roll, never left from an old one
        if not int(await self._lock(keys=[keys.HISTORY_LOCK], args=[self.token, LOCK_MS])):
            return 0
        partitions = range(int(await self.redis.get(keys.PARTITIONS) or 0))
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in partitions:
                key = keys.partition_dirty_key(partition)
                pipe.zrange(key, 0, MAX_CELLS_PER_CYCLE * 4, withscores=True)
            rows = await pipe.execute()
        oldest = now_s - self.settings.bucket_ttl_seconds
        marks: dict[tuple[int, str], list[tuple[int, float]]] = {}  # cell -> (partition, version)
        for partition, raw in zip(partitions, rows, strict=True):
            dirty = [(_text(pair[0]), float(pair[1])) for pair in raw]
            ready, expired = closed_cells(dirty, now_s, oldest)
            if expired:
                log.warning(
                    "%d history cells expired in Redis before they were rolled", len(expired)
                )
                await self._forget(keys=[keys.partition_dirty_key(partition)], args=_flat(expired))
            for start, scope, version in ready:
                marks.setdefault((start, scope), []).append((partition, version))
        cells = sorted(marks)[:MAX_CELLS_PER_CYCLE]
        if cells:
            counters = await self._read(cells, partitions)
            await self._write([(s, scope, 0.0) for s, scope in cells], counters, int(now_s))
        await self._agent_time(now_s, [keys.dirty_member(s, c) for s, c in cells if _agent(c)])
        if cells:
            await self._unmark(cells, marks)
            self.rows_written += len(cells)
        contacts = await self.contacts.roll(partitions, now_s)
        self.contact_rows_written += contacts
        if not self.contacts.behind:  # every settled change rolled: the drill-down says so
            await self.redis.set(keys.CONTACTS_ROLLED, int(now_s - self.contacts.settle_s))
        if now_s - self._last_prune > 3600:
            await self._prune(now_s)
        return len(cells)

    async def _agent_time(self, now_s: float, late: list[str]) -> None:
        """Agents' time, at most once an interval: a pass runs again at once while cells or
        contacts are behind (a replay), and each agent-time pass re-reads every agent's log
        since the open interval (py-spy: a fifth of the process during a replay). The late
        marks wait in a Redis set meanwhile, so a restart loses none."""
        if late:
            await self.redis.sadd(keys.AGENT_TIME_DIRTY, *late)
        if now_s - self._agent_time_s < self.settings.history_interval_seconds:
            return
        pending = [_text(m) for m in await self.redis.smembers(keys.AGENT_TIME_DIRTY)]
        marks = [keys.parse_dirty_member(member) for member in pending]
        await self.agent_time.cycle(
            now_s, [(start, scope.split(keys.SEP, 1)[1]) for start, scope in marks]
        )
        if pending:
            await self.redis.srem(keys.AGENT_TIME_DIRTY, *pending)
        self._agent_time_s = now_s

    async def _unmark(
        self, cells: list[tuple[int, str]], marks: dict[tuple[int, str], list[tuple[int, float]]]
    ) -> None:
        """Remove each partition's marks of the rolled cells, unless they moved meanwhile."""
        per_partition: dict[int, list[tuple[str, float]]] = {}
        for start, scope in cells:
            for partition, version in marks[(start, scope)]:
                member = keys.dirty_member(start, scope)
                per_partition.setdefault(partition, []).append((member, version))
        for partition, pairs in per_partition.items():
            await self._forget(keys=[keys.partition_dirty_key(partition)], args=_flat(pairs))

    async def _read(self, cells: list[tuple[int, str]], partitions: range) -> list[dict[str, int]]:
        """Each cell's 15 minute buckets over every partition, summed, in one round trip: each
        partition's minutes are summed inside Redis (one script, its keys in one slot), so only
        one hash per interval and partition is parsed here (parsing every minute bucket of every
        partition was most of the aggregator's CPU during a replay)."""
        minutes = keys.INTERVAL_SECONDS // keys.MINUTE_SECONDS
        starts = sorted({start for start, _ in cells})
        async with self.redis.pipeline(transaction=False) as pipe:
            for start in starts:
                for partition in partitions:
                    names = [
                        keys.partition_counter_key(partition, "m", start + i * keys.MINUTE_SECONDS)
                        for i in range(minutes)
                    ]
                    pipe.eval(SUM_MINUTES, len(names), *names)
            rows = await pipe.execute()
        totals: dict[tuple[int, str], dict[str, int]] = {cell: {} for cell in cells}
        parsed: dict[bytes | str, tuple[str, str]] = {}  # the same fields recur in every row
        per_interval = len(partitions)
        for n, start in enumerate(starts):
            for row in rows[n * per_interval : (n + 1) * per_interval]:
                for i in range(0, len(row), 2):
                    field = row[i]
                    split = parsed.get(field)
                    if split is None:
                        split = parsed[field] = keys.parse_counter_field(_text(field))
                    total = totals.get((start, split[0]))
                    if total is not None:
                        name = split[1]
                        total[name] = total.get(name, 0) + int(row[i + 1])
        return [totals[cell] for cell in cells]

    async def _write(
        self, cells: list[tuple[int, str, float]], counters: list[dict[str, int]], now_s: int
    ) -> None:
        table = intervals.interval_counters
        rows = [
            intervals.to_row(start, scope, c, now_s)
            for (start, scope, _), c in zip(cells, counters, strict=True)
            if not intervals.is_empty(c)
        ]
        empty = [
            (start, scope)
            for (start, scope, _), c in zip(cells, counters, strict=True)
            if intervals.is_empty(c)
        ]
        async with self.engine.begin() as conn:
            for start, scope in empty:  # a correction moved everything out of this cell
                await conn.execute(
                    delete(table).where(table.c.start_s == start, table.c.scope == scope)
                )
            if rows:
                await conn.execute(_upsert(conn.dialect.name), rows)

    async def _prune(self, now_s: float) -> None:
        table = intervals.interval_counters
        floor = int(now_s) - self.settings.history_retention_days * 86400
        agents = intervals.agent_intervals
        async with self.engine.begin() as conn:
            await conn.execute(delete(table).where(table.c.start_s < floor))
            await conn.execute(delete(agents).where(agents.c.start_s < floor))
        retention = self.settings.history_contacts_retention_days
        await contact_rows.prune(self.engine, now_s, retention)
        self._last_prune = now_s


def _upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (start_s, scope) DO UPDATE: the row becomes the live total."""
    table = intervals.interval_counters
    stmt: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    updated = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
    return stmt.on_conflict_do_update(index_elements=["start_s", "scope"], set_=updated)


def _flat(pairs: Sequence[tuple[str, float]]) -> list[str]:
    return [item for member, version in pairs for item in (member, repr(version))]


def _agent(scope: str) -> bool:
    return keys.parse_scope(scope)[0] == "ag"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
