"""The planners' read model: SQL interval rows summed into local-time buckets, plus the open one.

SQL does the summing: within a stretch of constant UTC offset, a local bucket is
`(start + offset + shift) // width`, so a 90-day hourly query is one GROUP BY per offset, never
90 days of rows in Python. Rates are computed after summing, from raw counters (kpis), so an
hour is never an average of quarter hours.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services import erlang, intervals, keys, kpis
from services.settings import Settings

from .live import LiveReader, Window, iso, read_options

WIDTH_S = {"15m": 900, "30m": 1800, "1h": 3600, "1d": 86400, "1w": 7 * 86400}
MAX_DAYS = {"15m": 31, "30m": 31, "1h": 93, "1d": 400, "1w": 400}
WEEK_SHIFT_S = 3 * 86400  # 1970-01-01 was a Thursday: shift so weeks start on Monday
GROUPS = ("channel", "queue")
VOLUME_COLUMNS = (
    "start", "end", "channel", "queue", "offered", "answered", "abandoned", "abandon_rate",
    "service_level", "asa_seconds", "aht_seconds", "partial",
)  # fmt: skip
_SUMMED = (
    kpis.OFFERED, kpis.QUEUED, kpis.ANSWERED, kpis.ANSWERED_UNTIMED, kpis.ANSWER_WAIT_MS,
    kpis.ABANDONED, kpis.ABANDONED_QUEUE, kpis.HANDLED, kpis.HANDLE_MS,
    *(f"{f}{i}" for f in intervals.HISTOGRAMS for i in range(intervals.BUCKETS)),
)  # fmt: skip
_PLAIN = (*kpis.COUNTS, kpis.ANSWER_WAIT_MS, kpis.HANDLED, kpis.HANDLE_MS)
Sums = list[tuple[str, ColumnElement[Any]]]


def _within(family: str, threshold_s: int) -> ColumnElement[Any]:
    """family_0 + ... + family_k: observations at or under the threshold (an edge)."""
    last = kpis.WAIT_EDGES_S.index(kpis.require_edge(threshold_s))
    t = intervals.interval_counters
    total: ColumnElement[Any] = t.c[intervals.column_name(f"{family}0")]
    for i in range(1, last + 1):
        total = total + t.c[intervals.column_name(f"{family}{i}")]
    return total


def _per_threshold(family: str, settings: Settings) -> ColumnElement[Any]:
    """Within each row's own threshold: queue override, else its channel's, else 20 s."""
    t = intervals.interval_counters
    whens = [(t.c.queue == q, _within(family, s))
             for q, s in settings.queue_sl_thresholds_seconds.items()]  # fmt: skip
    whens += [(t.c.channel == c, _within(family, s))
              for c, s in settings.sl_thresholds_seconds.items()]  # fmt: skip
    return case(*whens, else_=_within(family, 20)) if whens else _within(family, 20)


def volume_sums(settings: Settings) -> Sums:
    """What the volume figures need, reduced in SQL: a dozen sums instead of 80 columns."""
    t = intervals.interval_counters
    short = settings.short_abandon_seconds
    return [
        *((name, t.c[name]) for name in _PLAIN),
        (kpis.MET, _per_threshold(kpis.ANSWER_HIST, settings)),
        (kpis.ABANDONED_WITHIN, _per_threshold(kpis.QUEUE_ABANDON_HIST, settings)),
        (kpis.SHORT_QUEUE, _within(kpis.QUEUE_ABANDON_HIST, short)),
        (kpis.SHORT_IVR, _within(kpis.IVR_ABANDON_HIST, short)),
    ]


def reduce_live(c: dict[str, int], opts: kpis.ReadOptions) -> dict[str, int]:
    """Full live counters into the same reduced form as `volume_sums`."""
    out = kpis.within_counts(c, opts)
    for name in (kpis.ANSWER_WAIT_MS, kpis.HANDLED, kpis.HANDLE_MS):
        out[name] = c.get(name, 0)
    return out


class RangeError(ValueError):
    """A request the history cannot answer as asked; the message names the parameter."""


@dataclass(frozen=True, slots=True)
class Segment:
    start_s: int
    end_s: int
    offset_s: int


@dataclass(slots=True)
class Cell:
    """Summed counters of one output bucket, kept per channel and queue for exact rates."""

    start_s: int
    end_s: int
    parts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def add(self, channel: str, queue: str, counters: dict[str, int]) -> None:
        part = self.parts.get((channel, queue))
        if part is None:  # the common case: one SQL row per part (a copy, never the caller's)
            self.parts[(channel, queue)] = dict(counters)
        else:
            kpis.add_counters(part, counters)


def offset_segments(start_s: int, end_s: int, zone: ZoneInfo) -> list[Segment]:
    """[start, end) cut where the zone's UTC offset changes (DST), on 15-minute edges."""

    def offset(t: int) -> int:
        delta = datetime.fromtimestamp(t, zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    segments: list[Segment] = []
    lo, current = start_s, offset(start_s)
    t = start_s
    while t < end_s:
        step = 3600 if offset(min(t + 3600, end_s - 1)) == current else 900
        nxt = min(t + step, end_s)
        if nxt < end_s and offset(nxt) != current:
            segments.append(Segment(lo, nxt, current))
            lo, current = nxt, offset(nxt)
        t = nxt
    segments.append(Segment(lo, end_s, current))
    return segments


def local_floor(t: datetime, interval: str) -> datetime:
    """The start of the local bucket holding `t` (aware, in t's zone)."""
    if interval == "1w":
        t = t - timedelta(days=t.weekday())
    if interval in ("1d", "1w"):
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    width = WIDTH_S[interval] // 60
    minutes = t.hour * 60 + t.minute
    return t.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        minutes=minutes - minutes % width
    )


def bucket_bounds(key: int, interval: str, offset_s: int, zone: ZoneInfo) -> tuple[int, int]:
    """UTC [start, end) of the bucket with SQL key `key` (local naive index) in this segment."""
    width = WIDTH_S[interval]
    shift = WEEK_SHIFT_S if interval == "1w" else 0
    naive_s = key * width - shift
    if interval in ("1d", "1w"):  # calendar days: 23 or 25 hours across DST
        start = datetime.fromtimestamp(naive_s, UTC).replace(tzinfo=zone)
        days = 7 if interval == "1w" else 1
        end = (start.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=zone)
        return int(start.timestamp()), int(end.timestamp())
    start_s = naive_s - offset_s
    return start_s, start_s + width


Options = Callable[[str, str], kpis.ReadOptions]


def options_for(settings: Settings) -> Options:
    """read_options per (channel, queue), memoised: it runs for every part of every bucket."""

    @functools.cache
    def options(channel: str, queue: str) -> kpis.ReadOptions:
        return read_options(settings, channel, queue or None)

    return options


_TOTALS = (kpis.OFFERED, kpis.ANSWERED, kpis.ANSWERED_UNTIMED, kpis.ABANDONED,
           kpis.ANSWER_WAIT_MS, kpis.HANDLE_MS, kpis.HANDLED)  # fmt: skip


def figures(cell: Cell, options: Options) -> dict[str, Any]:
    """The volume columns of one bucket, from its reduced parts (thresholds per scope)."""
    total = dict.fromkeys(_TOTALS, 0)
    met = sl_den = ab = ab_den = 0
    for (channel, queue), counts in cell.parts.items():
        for name in _TOTALS:
            total[name] += counts.get(name, 0)
        opts = options(channel, queue)
        m, d = kpis.sl_from_counts(counts, opts)
        a, ad = kpis.abandon_from_counts(counts, opts)
        met, sl_den, ab, ab_den = met + m, sl_den + d, ab + a, ab_den + ad
    return {
        "offered": total.get(kpis.OFFERED, 0),
        "answered": kpis.answered(total),  # with the answers of unknown wait (not in ASA)
        "abandoned": total.get(kpis.ABANDONED, 0),
        "abandon_rate": kpis.ratio(ab, ab_den),
        "service_level": kpis.ratio(met, sl_den),
        "asa_seconds": kpis.mean_seconds(
            total.get(kpis.ANSWER_WAIT_MS, 0), total.get(kpis.ANSWERED, 0)
        ),
        "aht_seconds": kpis.mean_seconds(total.get(kpis.HANDLE_MS, 0), total.get(kpis.HANDLED, 0)),
    }


@dataclass(frozen=True, slots=True)
class VolumeQuery:
    interval: str
    start: datetime  # aware, local
    end: datetime
    zone: ZoneInfo
    channel: str | None = None
    queue: str | None = None
    group_by: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return "q" if self.queue is not None or "queue" in self.group_by else "ch"


def plan_range(
    interval: str, start: datetime | None, end: datetime | None, zone: ZoneInfo, now_s: float
) -> tuple[datetime, datetime]:
    """Default and check the range: aligned to local buckets, within the interval's limit."""
    now = datetime.fromtimestamp(now_s, zone)
    back = {"1d": timedelta(days=30), "1w": timedelta(weeks=12)}.get(interval, timedelta())
    first = local_floor((start or now.replace(hour=0, minute=0) - back).astimezone(zone), interval)
    last = (end or now).astimezone(zone)
    if last <= first:
        raise RangeError("to: must be after from")
    days = (last - first).total_seconds() / 86400
    if days > MAX_DAYS[interval]:
        raise RangeError(
            f"from/to: {days:.0f} days is over the {MAX_DAYS[interval]}-day limit for "
            f"interval={interval} (15m and 30m: 31 days, 1h: 93, 1d and 1w: 400)"
        )
    return first, last


class HistoryReader:
    def __init__(self, engine: AsyncEngine, settings: Settings, live: LiveReader) -> None:
        self.engine = engine
        self.settings = settings
        self.live = live
        self.sums = volume_sums(settings)
        self.options = options_for(settings)

    async def known_queue(self, queue: str) -> bool:
        t = intervals.interval_counters
        stmt = select(t.c.queue).where(t.c.kind == "q", t.c.queue == queue).limit(1)
        async with self.engine.connect() as conn:
            if (await conn.execute(stmt)).first() is not None:
                return True
        scopes = await self.live.active_scopes(0)
        return any(keys.parse_scope(s)[0] == "q" and keys.parse_scope(s)[2] == queue
                   for s in scopes)  # fmt: skip

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
        for (lo, g_channel, g_queue), cell in sorted(cells.items()):
            row: dict[str, Any] = {"start": iso(lo), "end": iso(cell.end_s)}
            if "channel" in q.group_by:
                row["channel"] = g_channel
            if "queue" in q.group_by:
                row["queue"] = g_queue
            row.update(figures(cell, self.options))
            row["partial"] = cell.end_s > now_s
            rows.append(row)
        return rows, live_ok

    def _cell(
        self, cells: dict[tuple[int, str, str], Cell], q: VolumeQuery, lo: int, hi: int,
        channel: str, queue: str,
    ) -> Cell:  # fmt: skip
        key = (lo, channel if "channel" in q.group_by else "",
               queue if "queue" in q.group_by else "")  # fmt: skip
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
        self, start: datetime, end: datetime, zone: ZoneInfo, channel: str | None,
        queue: str | None,
    ) -> dict[int, int]:  # fmt: skip
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
        cols = [*_SUMMED, kpis.ABANDON_WAIT_MS]
        names = [intervals.column_name(f) for f in cols]
        stmt = (
            select(t.c.start_s, *[func.sum(t.c[n]).label(n) for n in names])
            .where(*self._filters(q), t.c.start_s >= int(start.timestamp()),
                   t.c.start_s < int(end.timestamp()))
            .group_by(t.c.start_s)
        )  # fmt: skip
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {int(r.start_s): intervals.counters_of(r._mapping) for r in rows}

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


class HistoryBaseline:
    """The alerter's baseline: abandon rate of the same local hour of the week, 4 weeks back."""

    def __init__(self, reader: HistoryReader, weeks: int = 4) -> None:
        self.reader = reader
        self.weeks = weeks

    async def rate(self, channel: str, queue: str | None, at_epoch_s: float) -> float | None:
        """None when those hours hold no contacts (a new install, or a new queue)."""
        zone = self.reader.settings.zone
        hour = local_floor(datetime.fromtimestamp(at_epoch_s, zone), "1h").replace(tzinfo=None)
        cell = Cell(0, 0)
        for week in range(1, self.weeks + 1):
            start = (hour - timedelta(weeks=week)).replace(tzinfo=zone)
            q = VolumeQuery("1h", start, start + timedelta(hours=1), zone, channel, queue)
            seg = Segment(int(start.timestamp()), int(start.timestamp()) + 3600, 0)
            for ch, qu, _, counters in await self.reader._sums(q, seg):
                cell.add(ch, qu, counters)
        out = figures(cell, self.reader.options)
        return out["abandon_rate"] if out["offered"] else None


def _matches(scope: str, q: VolumeQuery) -> bool:
    parts = keys.parse_scope(scope)
    if parts[0] != q.kind:
        return False
    if q.channel is not None and parts[1] != q.channel:
        return False
    return q.queue is None or (len(parts) > 2 and parts[2] == q.queue)


# --- heat map and staffing: pure arithmetic over what the reader returned ---


def heatmap(hourly: dict[int, int], weeks: list[datetime], zone: ZoneInfo) -> list[dict[str, Any]]:
    """Offered per weekday x local hour: mean and p90 (nearest rank) over the given weeks.

    Each stored hour goes to the cell of its own local time, so on a DST change the repeated
    hour adds both occurrences to its cell and the skipped hour counts 0 (never a neighbour's).
    """
    if not weeks:
        return []
    ends = [(w.replace(tzinfo=None) + timedelta(weeks=1)).replace(tzinfo=zone) for w in weeks]
    bounds = [int(w.timestamp()) for w in weeks] + [int(ends[-1].timestamp())]
    grid = [[[0] * 24 for _ in range(7)] for _ in weeks]  # week -> weekday -> hour
    for t, offered in hourly.items():
        week = bisect.bisect_right(bounds, t) - 1
        if 0 <= week < len(weeks):
            local = datetime.fromtimestamp(t, zone)
            grid[week][local.weekday()][local.hour] += offered
    names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    out = []
    for d in range(7):
        for h in range(24):
            v = [g[d][h] for g in grid]
            out.append({"weekday": d, "day": names[d], "hour": h, "mean": sum(v) / len(v),
                        "p90": p90(v)})  # fmt: skip
    return out


def p90(values: Sequence[int]) -> int:
    """Nearest-rank 90th percentile: a value that really occurred."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def patience_seconds(c: dict[str, int]) -> float | None:
    """Mean patience by the exponential estimate: time spent queueing / queue abandons.

    Abandoned callers' waits come from the abandon histogram (bucket mid-points, the top
    bucket at its lower edge); answered callers' waits are exact sums.
    """
    abandons = c.get(kpis.ABANDONED_QUEUE, 0)
    if abandons <= 0:
        return None
    edges = (0, *kpis.WAIT_EDGES_S)
    waited = c.get(kpis.ANSWER_WAIT_MS, 0) / 1000
    for i in range(intervals.BUCKETS):
        n = c.get(f"{kpis.QUEUE_ABANDON_HIST}{i}", 0)
        mid = edges[i] if i == kpis.OVERFLOW else (edges[i] + edges[i + 1]) / 2
        waited += n * mid
    return waited / abandons if waited > 0 else None


def staffing_rows(
    days: Iterable[dict[int, dict[str, int]]], weeks_used: int, day_start: datetime,
    interval_s: int, target_sl: float, threshold_s: int, shrinkage: float,
) -> list[dict[str, Any]]:  # fmt: skip
    """Forecast each interval as the mean of the same weekday and time over past weeks; staff it."""
    by_offset: dict[int, dict[str, int]] = {}
    for rows in days:  # each past day, keyed by UTC start: re-key by local seconds since midnight
        for start_s, counters in rows.items():
            local = datetime.fromtimestamp(start_s, day_start.tzinfo)
            since = (local.hour * 3600 + local.minute * 60) // interval_s * interval_s
            kpis.add_counters(by_offset.setdefault(since, {}), counters)
    pooled: dict[str, int] = {}
    for counters in by_offset.values():
        kpis.add_counters(pooled, counters)
    rows_out = []
    for since in range(0, 86400, interval_s):
        c = by_offset.get(since, {})
        forecast = c.get(kpis.OFFERED, 0) / weeks_used if weeks_used else 0.0
        aht = _aht(c) or _aht(pooled)
        patience = patience_seconds(c) or patience_seconds(pooled)
        start = (day_start.replace(tzinfo=None) + timedelta(seconds=since)).replace(
            tzinfo=day_start.tzinfo
        )
        end = (start.replace(tzinfo=None) + timedelta(seconds=interval_s)).replace(
            tzinfo=day_start.tzinfo
        )
        row: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat(),
                               "forecast_offered": round(forecast, 3), "aht_seconds": aht,
                               "patience_seconds": patience}  # fmt: skip
        row.update(_agents(forecast / interval_s, aht, patience, target_sl, threshold_s, shrinkage))
        row["expected_sl"] = row["service_level_erlang_c"]
        rows_out.append(row)
    return rows_out


def _aht(c: dict[str, int]) -> float | None:
    return kpis.mean_seconds(c.get(kpis.HANDLE_MS, 0), c.get(kpis.HANDLED, 0))


def _agents(
    rate: float, aht: float | None, patience: float | None, target: float, threshold: int,
    shrinkage: float,
) -> dict[str, Any]:  # fmt: skip
    if aht is None or rate <= 0:
        return {"erlangs": 0.0, "agents_erlang_c": 0, "scheduled_erlang_c": 0,
                "service_level_erlang_c": None, "asa_seconds": None, "agents_erlang_a": 0,
                "scheduled_erlang_a": 0, "service_level_erlang_a": None,
                "abandon_rate_erlang_a": None}  # fmt: skip
    c = erlang.agents_erlang_c(rate, aht, target, threshold)
    out: dict[str, Any] = {
        "erlangs": round(rate * aht, 4),
        "agents_erlang_c": c.agents,
        "scheduled_erlang_c": math.ceil(c.agents / (1 - shrinkage) - 1e-9),
        "service_level_erlang_c": round(c.service_level, 4),
        "asa_seconds": round(c.asa_seconds, 2) if c.asa_seconds is not None else None,
    }
    if patience is None:  # no abandons seen: Erlang A has nothing to add
        out.update(agents_erlang_a=c.agents, scheduled_erlang_a=out["scheduled_erlang_c"],
                   service_level_erlang_a=out["service_level_erlang_c"],
                   abandon_rate_erlang_a=None)  # fmt: skip
        return out
    a = erlang.agents_erlang_a(rate, aht, patience, target, threshold)
    out.update(
        agents_erlang_a=a.agents,
        scheduled_erlang_a=math.ceil(a.agents / (1 - shrinkage) - 1e-9),
        service_level_erlang_a=round(a.service_level, 4),
        abandon_rate_erlang_a=round(a.abandon_probability or 0.0, 4),
    )
    return out
