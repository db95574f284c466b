"""Reads what cost per case needs from SQL history: agents' logged-in time per interval
(`agent_intervals`) and their handle time per channel and queue (the agent rows' `hqm:` fields),
over whole local days of the installation's zone, and prices it (`services.costs`).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services import costs, intervals, keys, kpis
from services.clock import iso_utc
from services.settings import Settings

MAX_RANGE_S = 93 * 86400  # a quarter: longer ranges answer without cost figures, and say so
COST_COLUMNS = ("logged_in_hours", "labour_cost", "cost_per_handled", "handled_per_logged_in_hour")


def rates_of(settings: Settings) -> costs.Rates:
    return costs.Rates(
        settings.cost_per_hour, settings.channel_cost_per_hour, settings.queue_cost_per_hour
    )


def day_bounds(start_s: int, end_s: int, zone: ZoneInfo) -> tuple[int, int]:
    """The local days that hold [start_s, end_s): the handle mix is taken per whole day."""
    first = datetime.fromtimestamp(start_s, zone).date()
    last = datetime.fromtimestamp(max(start_s, end_s - 1), zone).date() + timedelta(days=1)
    lo = datetime.combine(first, datetime.min.time(), zone)
    hi = datetime.combine(last, datetime.min.time(), zone)
    return int(lo.timestamp()), int(hi.timestamp())


def handle_mix(extra: str) -> dict[costs.Group, int]:
    """The `hqm:` fields an agent row carries in `extra`, by (channel, queue)."""
    out: dict[costs.Group, int] = {}
    for name, value in json.loads(extra or "{}").items():
        group = kpis.parse_queue_handle_field(name)
        if group is not None:
            out[group] = out.get(group, 0) + int(value)
    return out


class CostReader:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.zone = settings.zone
        self.rates = rates_of(settings)

    def day_of(self, start_s: int) -> int:
        return datetime.fromtimestamp(start_s, self.zone).date().toordinal()

    async def inputs(
        self, start_s: int, end_s: int, agent: str | None = None
    ) -> tuple[dict[tuple[int, str], int], dict[tuple[int, str], dict[costs.Group, int]]]:
        """Logged-in ms and handle mix per (interval, agent) over the days holding the range."""
        lo, hi = day_bounds(start_s, end_s, self.zone)
        a = intervals.agent_intervals
        t = intervals.interval_counters
        logged = select(a.c.start_s, a.c.agent, a.c.logged_in_ms).where(
            a.c.start_s >= lo, a.c.start_s < hi
        )
        handled = select(t.c.start_s, t.c.agent, t.c.extra).where(
            t.c.kind == "ag",
            t.c.start_s >= lo,
            t.c.start_s < hi,
            t.c.extra.like(f"%{kpis.QUEUE_HANDLE_MS}%"),
        )
        if agent is not None:
            logged = logged.where(a.c.agent == agent)
            handled = handled.where(t.c.agent == agent)
        async with self.engine.connect() as conn:
            logged_rows = (await conn.execute(logged)).all()
            handle_rows = (await conn.execute(handled)).all()
        logged_in = {(int(r[0]), str(r[1])): int(r[2]) for r in logged_rows}
        mix = {(int(r[0]), str(r[1])): handle_mix(str(r[2])) for r in handle_rows}
        return logged_in, mix

    async def allocation(self, start_s: int, end_s: int) -> costs.Allocation:
        logged_in, mix = await self.inputs(start_s, end_s)
        return costs.allocate(logged_in, mix, self.day_of)

    async def productivity(
        self, spans: list[tuple[int, int]], agent: str | None
    ) -> list[dict[str, Any]]:
        """Per agent and bucket: handled, logged-in hours, handled per hour, cost, cost per case."""
        if not spans:
            return []
        start_s, end_s = spans[0][0], spans[-1][1]
        logged_in, mix = await self.inputs(start_s, end_s, agent)
        allocation = costs.allocate(logged_in, mix, self.day_of)
        counts = await agent_counts(self.engine, start_s, end_s, agent)
        inside = {k: v for k, v in logged_in.items() if start_s <= k[0] < end_s}
        return productivity_rows(spans, inside, counts, allocation, self.rates)

    async def add_to_rows(
        self,
        rows: list[dict[str, Any]],
        start_s: int,
        end_s: int,
        channel: str | None,
        queue: str | None,
        group_by: Iterable[str],
    ) -> list[str]:
        """Cost columns on every volume row; the warnings to show (none when all went well)."""
        groups = set(group_by)
        if end_s - start_s > MAX_RANGE_S:
            for row in rows:
                row.update(dict.fromkeys(COST_COLUMNS))
            return ["cost: ranges over 93 days have no cost figures; ask for each quarter"]
        allocation = await self.allocation(start_s, end_s)
        by_start: dict[int, list[costs.Entry]] = {}
        for entry in allocation:
            by_start.setdefault(entry[0], []).append(entry)
        for row in rows:
            lo, hi = _epoch(row["start"]), _epoch(row["end"])
            entries = [
                entry
                for s in range(lo, hi, keys.INTERVAL_SECONDS)
                for entry in by_start.get(s, ())
                if _wanted(entry, row, channel, queue, groups)
            ]
            work = costs.labour(allocation, entries, self.rates)
            row.update(costs.cost_figures(work, int(row.get("handled", 0))))
        return []


async def agent_counts(
    engine: AsyncEngine, start_s: int, end_s: int, agent: str | None
) -> dict[tuple[int, str], tuple[int, int]]:
    """(interval, agent) -> (handled, handle ms) from the agent rows of history."""
    t = intervals.interval_counters
    stmt = select(t.c.start_s, t.c.agent, t.c.handled, t.c.handle_ms).where(
        t.c.kind == "ag", t.c.start_s >= start_s, t.c.start_s < end_s
    )
    if agent is not None:
        stmt = stmt.where(t.c.agent == agent)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return {(int(r[0]), str(r[1])): (int(r[2]), int(r[3])) for r in rows}


def productivity_rows(
    spans: list[tuple[int, int]],
    logged_in: dict[tuple[int, str], int],
    counts: dict[tuple[int, str], tuple[int, int]],
    allocation: costs.Allocation,
    rates: costs.Rates,
) -> list[dict[str, Any]]:
    """One row per bucket and agent with logged-in time or handled contacts in it."""
    bounds = [lo for lo, _ in spans]
    out: dict[tuple[int, str], dict[str, Any]] = {}

    def row(start: int, agent: str) -> dict[str, Any] | None:
        i = bisect_right(bounds, start) - 1
        if i < 0 or start >= spans[i][1]:
            return None
        key = (i, agent)
        if key not in out:
            out[key] = {
                "span": spans[i],
                "agent": agent,
                "handled": 0,
                "handle_ms": 0,
                "work": costs.Labour(cost=0.0 if rates.configured() else None),
            }
        return out[key]

    for (start, agent), (handled, handle_ms) in counts.items():
        r = row(start, agent)
        if r is not None:
            r["handled"] += handled
            r["handle_ms"] += handle_ms
    for entry, ms in sorted(allocation.items()):
        r = row(entry[0], entry[1])
        if r is not None:
            r["work"].add(ms, rates.per_hour(entry[2], entry[3]))
    for start, agent in logged_in:
        row(start, agent)
    rows = []
    for (_, agent), r in sorted(out.items()):
        lo, hi = r["span"]
        figures = costs.cost_figures(r["work"], r["handled"])
        rows.append(
            {
                "start": iso_utc(lo),
                "end": iso_utc(hi),
                "agent": agent,
                "handled": r["handled"],
                "aht_seconds": kpis.mean_seconds(r["handle_ms"], r["handled"]),
                **figures,
            }
        )
    return rows


def _wanted(
    entry: costs.Entry,
    row: dict[str, Any],
    channel: str | None,
    queue: str | None,
    groups: set[str],
) -> bool:
    """Whether an allocation entry belongs to the row: its group, within the filters. Idle
    (unallocated) time only joins rows of the whole centre, neither grouped nor filtered."""
    _, _, ch, q = entry
    if (ch, q) == costs.UNALLOCATED:
        return not groups and channel is None and queue is None
    if channel is not None and ch != channel:
        return False
    if queue is not None and q != queue:
        return False
    if "channel" in groups and row.get("channel") != ch:
        return False
    return "queue" not in groups or row.get("queue") == q


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
