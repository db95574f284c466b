"""The planners' SQL reader: interval rows summed into local buckets, plus the open interval
from the live counters, so `now` is always there.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services import intervals, keys, kpis
from services.settings import Settings

from ..live_reader import LiveReader, Window, iso
from .buckets import (
    WEEK_SHIFT_S,
    WIDTH_S,
    Segment,
    VolumeQuery,
    bucket_bounds,
    bucket_spans,
    offset_segments,
)
from .costs import CostReader
from .sums import SUMMED, Cell, Options, Sums, figures, options_for, reduce_live, volume_sums


class HistoryReader:
    def __init__(self, engine: AsyncEngine, settings: Settings, live: LiveReader) -> None:
        self.engine = engine
        self.settings = settings
        self.live = live
        self.sums = volume_sums(settings)
        self.options = options_for(settings)
        self.costs = CostReader(engine, settings)

    async def known_queue(self, queue: str) -> bool:
        t = intervals.interval_counters
        stmt = select(t.c.queue).where(t.c.kind == "q", t.c.queue == queue).limit(1)
        async with self.engine.connect() as conn:
            if (await conn.execute(stmt)).first() is not None:
                return True
        scopes = await self.live.active_scopes(0)
        return any(
            keys.parse_scope(s)[0] == "q" and keys.parse_scope(s)[2] == queue for s in scopes
        )

    async def volume(self, q: VolumeQuery, now_s: float) -> tuple[list[dict[str, Any]], bool]:
        """Rows per bucket (and group), oldest first; the flag says the live part was read."""
        start_s, end_s = int(q.start.timestamp()), int(q.end.timestamp())
        open_s = keys.interval_start_s(now_s)
        cells: dict[tuple[int, str, str], Cell] = {}
        for seg in offset_segments(start_s, min(end_s, open_s), q.zone) if start_s < open_s else []:
            for channel, queue, key, counters in await self._sums(q, seg):
                lo, hi = bucket_bounds(key, q.interval, seg.offset_s, q.zone)
                self._cell(cells, q, lo, hi, channel, queue).add(channel, queue, counters)
        live_ok = True
        if open_s < end_s:
            live_ok = await self._add_open(cells, q, open_s, now_s)
        rows = []
        for (_, g_channel, g_queue), cell in sorted(cells.items()):
            rows.append(volume_row(cell, g_channel, g_queue, q, now_s, self.options))
        return rows, live_ok

    def _cell(
        self,
        cells: dict[tuple[int, str, str], Cell],
        q: VolumeQuery,
        lo: int,
        hi: int,
        channel: str,
        queue: str,
    ) -> Cell:
        key = (
            lo,
            channel if "channel" in q.group_by else "",
            queue if "queue" in q.group_by else "",
        )
        if key not in cells:
            cells[key] = Cell(lo, hi)
        return cells[key]

    async def _sums(
        self, q: VolumeQuery, seg: Segment, sums: Sums | None = None
    ) -> list[tuple[str, str, int, dict[str, int]]]:
        """SUM each expression per channel, queue and local bucket of this offset segment."""
        t = intervals.interval_counters
        sums = sums if sums is not None else self.sums
        shift = WEEK_SHIFT_S if q.interval == "1w" else 0
        bucket = ((t.c.start_s + (seg.offset_s + shift)) // WIDTH_S[q.interval]).label("b")
        stmt = (
            select(t.c.channel, t.c.queue, bucket, *[func.sum(e).label(n) for n, e in sums])
            .where(*self._filters(q), t.c.start_s >= seg.start_s, t.c.start_s < seg.end_s)
            .group_by(t.c.channel, t.c.queue, bucket)
        )
        names = [n for n, _ in sums]
        async with self.engine.connect() as conn:
            result = await conn.execute(stmt)
            return [
                (
                    row[0],
                    row[1],
                    int(row[2]),
                    {n: int(v or 0) for n, v in zip(names, row[3:], strict=True)},
                )
                for row in result
            ]

    def _filters(self, q: VolumeQuery) -> list[ColumnElement[bool]]:
        t = intervals.interval_counters
        where = [t.c.kind == q.kind]
        if q.channel is not None:
            where.append(t.c.channel == q.channel)
        if q.queue is not None:
            where.append(t.c.queue == q.queue)
        return where

    async def _add_open(
        self, cells: dict[tuple[int, str, str], Cell], q: VolumeQuery, open_s: int, now_s: float
    ) -> bool:
        """The open 15-minute interval from the live buckets (Redis), so `now` is always there."""
        try:
            scopes = [s for s in await self.live.active_scopes(open_s) if _matches(s, q)]
            counters = await self.live.counters(scopes, Window("open", open_s, int(now_s) + 1))
        except (RedisError, OSError):
            return False  # history still answers; the caller says the open interval is missing
        seg = offset_segments(open_s, open_s + 900, q.zone)[0]
        shift = WEEK_SHIFT_S if q.interval == "1w" else 0
        key = (open_s + seg.offset_s + shift) // WIDTH_S[q.interval]
        lo, hi = bucket_bounds(key, q.interval, seg.offset_s, q.zone)
        for scope, c in counters.items():
            parts = keys.parse_scope(scope)
            channel, queue = parts[1], parts[2] if parts[0] == "q" else ""
            if not intervals.is_empty(c):
                reduced = reduce_live(c, self.options(channel, queue))
                self._cell(cells, q, lo, hi, channel, queue).add(channel, queue, reduced)
        return True

    async def hourly_offered(
        self,
        start: datetime,
        end: datetime,
        zone: ZoneInfo,
        channel: str | None,
        queue: str | None,
    ) -> dict[int, int]:
        """Offered per UTC hour start over [start, end): the heat map's raw material."""
        q = VolumeQuery("1h", start, end, zone, channel, queue)
        out: dict[int, int] = {}
        for seg in offset_segments(int(start.timestamp()), int(end.timestamp()), zone):
            sums: Sums = [(kpis.OFFERED, intervals.interval_counters.c.offered)]
            for _, _, key, counters in await self._sums(q, seg, sums):
                lo, _ = bucket_bounds(key, "1h", seg.offset_s, zone)
                out[lo] = out.get(lo, 0) + counters.get(kpis.OFFERED, 0)
        return out

    async def day_intervals(
        self, day: date, zone: ZoneInfo, channel: str | None, queue: str | None
    ) -> dict[int, dict[str, int]]:
        """One local day's 15-minute rows summed over scopes, keyed by UTC start."""
        start = datetime.combine(day, datetime.min.time(), zone)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
        q = VolumeQuery("15m", start, end, zone, channel, queue)
        t = intervals.interval_counters
        cols = [*SUMMED, kpis.ABANDON_WAIT_MS]
        names = [intervals.column_name(f) for f in cols]
        stmt = (
            select(t.c.start_s, *[func.sum(t.c[n]).label(n) for n in names])
            .where(
                *self._filters(q),
                t.c.start_s >= int(start.timestamp()),
                t.c.start_s < int(end.timestamp()),
            )
            .group_by(t.c.start_s)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {int(r.start_s): intervals.counters_of(r._mapping) for r in rows}

    async def day_intervals_by_channel(
        self, day: date, zone: ZoneInfo, queue: str | None
    ) -> dict[str, dict[int, dict[str, int]]]:
        """`day_intervals` for each channel apart: each is staffed against its own target."""
        start = datetime.combine(day, datetime.min.time(), zone)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
        q = VolumeQuery("15m", start, end, zone, None, queue)
        t = intervals.interval_counters
        names = [intervals.column_name(f) for f in (*SUMMED, kpis.ABANDON_WAIT_MS)]
        stmt = (
            select(t.c.channel, t.c.start_s, *[func.sum(t.c[n]).label(n) for n in names])
            .where(
                *self._filters(q),
                t.c.start_s >= int(start.timestamp()),
                t.c.start_s < int(end.timestamp()),
            )
            .group_by(t.c.channel, t.c.start_s)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        out: dict[str, dict[int, dict[str, int]]] = {}
        for r in rows:
            out.setdefault(str(r.channel), {})[int(r.start_s)] = intervals.counters_of(r._mapping)
        return out

    async def has_demo(self, start: datetime, end: datetime) -> bool:
        """Demo history (`ccpulse up --simulate`) lies in [start, end): the answer says so."""
        t = intervals.interval_counters
        stmt = (
            select(t.c.start_s)
            .where(
                t.c.start_s >= int(start.timestamp()),
                t.c.start_s < int(end.timestamp()),
                t.c.extra.like(intervals.DEMO_MARK),
            )
            .limit(1)
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def has_rows(self, day: date, zone: ZoneInfo) -> bool:
        t = intervals.interval_counters
        start = int(datetime.combine(day, datetime.min.time(), zone).timestamp())
        stmt = (
            select(t.c.start_s)
            .where(t.c.kind == "ch", t.c.start_s >= start, t.c.start_s < start + 86400)
            .limit(1)
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(stmt)).first() is not None


def _matches(scope: str, q: VolumeQuery) -> bool:
    parts = keys.parse_scope(scope)
    if parts[0] != q.kind:
        return False
    if q.channel is not None and parts[1] != q.channel:
        return False
    return q.queue is None or (len(parts) > 2 and parts[2] == q.queue)


def with_empty_buckets(
    rows: list[dict[str, Any]], q: VolumeQuery, now_s: float, options: Options
) -> list[dict[str, Any]]:
    """Every bucket of the range for every group the answer holds (or its filters name), empty
    ones as zero rows: counts 0, rates and averages null, as figures() gives for no contacts."""
    group_keys = {(r.get("channel", ""), r.get("queue", "")) for r in rows}
    fixed = {"channel": q.channel, "queue": q.queue}
    if all(fixed[g] is not None for g in q.group_by):  # no grouping, or filters name the group
        channel = q.channel or "" if "channel" in q.group_by else ""
        group_keys.add((channel, q.queue or "" if "queue" in q.group_by else ""))
    present = {(r["start"], r.get("channel", ""), r.get("queue", "")) for r in rows}
    out = list(rows)
    for lo, hi in bucket_spans(q.interval, q.start, q.end):
        for channel, queue in group_keys:
            if (iso(lo), channel, queue) in present:
                continue
            out.append(volume_row(Cell(lo, hi), channel, queue, q, now_s, options))
    return sorted(out, key=lambda r: (r["start"], r.get("channel", ""), r.get("queue", "")))


def volume_row(
    cell: Cell, channel: str, queue: str, q: VolumeQuery, now_s: float, options: Options
) -> dict[str, Any]:
    """One bucket's row: its bounds, the grouped names, the figures, open or closed."""
    row: dict[str, Any] = {"start": iso(cell.start_s), "end": iso(cell.end_s)}
    if "channel" in q.group_by:
        row["channel"] = channel
    if "queue" in q.group_by:
        row["queue"] = queue
    row.update(figures(cell, options))
    row["partial"] = cell.end_s > now_s
    return row
