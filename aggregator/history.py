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
import secrets
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services import intervals, keys, kpis
from services.settings import Settings

log = logging.getLogger("ccpulse.history")

MAX_CELLS_PER_CYCLE = 2000
LOCK_MS = 30_000

_LOCK = """
local held = redis.call('GET', KEYS[1])
if held == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if held == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""
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


class HistoryWriter:
    def __init__(self, settings: Settings, redis: Redis, engine: AsyncEngine) -> None:
        self.settings = settings
        self.redis = redis
        self.engine = engine
        self.token = secrets.token_hex(8)
        self.clock = settings.clock()
        self._lock = redis.register_script(_LOCK)
        self._forget = redis.register_script(_FORGET)
        self._last_prune = 0.0
        self.rows_written = 0

    async def run(self, stopping: asyncio.Event) -> None:
        """Roll every few seconds until stopped; an outage only delays history, marks persist."""
        while not stopping.is_set():
            try:
                while await self.cycle(self.clock.now()) >= MAX_CELLS_PER_CYCLE:
                    pass  # a backlog: keep rolling without waiting
            except (RedisError, SQLAlchemyError, OSError) as exc:
                log.warning("history rollup failed, will retry: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.settings.history_interval_seconds)

    async def cycle(self, now_s: float) -> int:
        """One pass: returns how many cells were rolled (0 when another instance holds the lock)."""
        if not int(await self._lock(keys=[keys.HISTORY_LOCK], args=[self.token, LOCK_MS])):
            return 0
        raw = await self.redis.zrange(
            keys.DIRTY_INTERVALS, 0, MAX_CELLS_PER_CYCLE * 4, withscores=True
        )
        dirty = [(_text(pair[0]), float(pair[1])) for pair in raw]
        oldest = now_s - self.settings.bucket_ttl_seconds
        ready, expired = closed_cells(dirty, now_s, oldest)
        if expired:
            log.warning("%d history cells expired in Redis before they were rolled", len(expired))
            await self._forget(keys=[keys.DIRTY_INTERVALS], args=_flat(expired))
        ready = ready[:MAX_CELLS_PER_CYCLE]
        if ready:
            counters = await self._read([(s, scope) for s, scope, _ in ready])
            await self._write(ready, counters, int(now_s))
            await self._forget(
                keys=[keys.DIRTY_INTERVALS],
                args=_flat([(keys.dirty_member(s, scope), v) for s, scope, v in ready]),
            )
            self.rows_written += len(ready)
        if now_s - self._last_prune > 3600:
            await self._prune(now_s)
        return len(ready)

    async def _read(self, cells: list[tuple[int, str]]) -> list[dict[str, int]]:
        """Each cell's 15 minute buckets, summed, in one pipelined round trip."""
        minutes = keys.INTERVAL_SECONDS // keys.MINUTE_SECONDS
        async with self.redis.pipeline(transaction=False) as pipe:
            for start, scope in cells:
                for i in range(minutes):
                    pipe.hgetall(keys.counter_key("m", start + i * keys.MINUTE_SECONDS, scope))
            rows = await pipe.execute()
        return [
            kpis.sum_counters(
                {_text(k): v for k, v in r.items()} for r in rows[n * minutes : (n + 1) * minutes]
            )
            for n in range(len(cells))
        ]

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
        async with self.engine.begin() as conn:
            await conn.execute(delete(table).where(table.c.start_s < floor))
        self._last_prune = now_s


def _upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (start_s, scope) DO UPDATE: the row becomes the live total."""
    table = intervals.interval_counters
    stmt: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    updated = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
    return stmt.on_conflict_do_update(index_elements=["start_s", "scope"], set_=updated)


def _flat(pairs: Sequence[tuple[str, float]]) -> list[str]:
    return [item for member, version in pairs for item in (member, repr(version))]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
