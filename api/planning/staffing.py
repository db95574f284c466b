"""Heat map and staffing: pure arithmetic (Erlang C and A) over what the reader returned."""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services import erlang, intervals, kpis


def heatmap(
    hourly: dict[int, int],
    weeks: list[datetime],
    zone: ZoneInfo,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Offered per weekday x local hour: mean and p90 (nearest rank) over the given weeks.

    Each stored hour goes to the cell of its own local time, so on a DST change the repeated
    hour adds both occurrences to its cell and the skipped hour counts 0 (never a neighbour's).
    With `now`, the week after the last one (the current week) counts too, in the cells whose
    hour is already over: a new installation sees its first days, each cell says how many
    weeks it holds and whether the current week is one of them.
    """
    if not weeks:
        return []
    span = [*weeks, _next_week(weeks[-1], zone)] if now is not None else weeks
    ends = [_next_week(w, zone) for w in span]
    bounds = [int(w.timestamp()) for w in span] + [int(ends[-1].timestamp())]
    grid = [[[0] * 24 for _ in range(7)] for _ in span]  # week -> weekday -> hour
    for t, offered in hourly.items():
        week = bisect.bisect_right(bounds, t) - 1
        if 0 <= week < len(span):
            local = datetime.fromtimestamp(t, zone)
            grid[week][local.weekday()][local.hour] += offered
    names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    out = []
    for d in range(7):
        for h in range(24):
            v = [g[d][h] for g in grid[: len(weeks)]]
            partial = now is not None and _hour_over(span[-1], d, h, zone, now)
            if partial:
                v.append(grid[-1][d][h])
            out.append(
                {
                    "weekday": d,
                    "day": names[d],
                    "hour": h,
                    "mean": sum(v) / len(v),
                    "p90": p90(v),
                    "weeks": len(v),
                    "current_week": partial,
                }
            )
    return out


def _next_week(start: datetime, zone: ZoneInfo) -> datetime:
    return (start.replace(tzinfo=None) + timedelta(weeks=1)).replace(tzinfo=zone)


def _hour_over(week: datetime, weekday: int, hour: int, zone: ZoneInfo, now: datetime) -> bool:
    """The local hour `hour` of day `weekday` of this week has ended by `now`."""
    end = week.replace(tzinfo=None) + timedelta(days=weekday, hours=hour + 1)
    return end.replace(tzinfo=zone) <= now


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
    days: Iterable[dict[int, dict[str, int]]],
    weeks_used: int,
    day_start: datetime,
    interval_s: int,
    target_sl: float,
    threshold_s: int,
    shrinkage: float,
) -> list[dict[str, Any]]:
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
        row: dict[str, Any] = {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "forecast_offered": round(forecast, 3),
            "aht_seconds": aht,
            "patience_seconds": patience,
        }
        row.update(_agents(forecast / interval_s, aht, patience, target_sl, threshold_s, shrinkage))
        row["expected_sl"] = row["service_level_erlang_c"]
        rows_out.append(row)
    return rows_out


# Figures that add up across channels, and figures that are means weighted by the forecast.
SUMMED_STAFF = (
    "forecast_offered",
    "erlangs",
    "agents_erlang_c",
    "scheduled_erlang_c",
    "agents_erlang_a",
    "scheduled_erlang_a",
)
WEIGHTED_STAFF = (
    "aht_seconds",
    "patience_seconds",
    "service_level_erlang_c",
    "asa_seconds",
    "service_level_erlang_a",
    "abandon_rate_erlang_a",
)


def staffing_by_channel(
    per_channel: dict[str, list[dict[int, dict[str, int]]]],
    thresholds: dict[str, int],
    weeks_used: int,
    day_start: datetime,
    interval_s: int,
    target_sl: float,
    shrinkage: float,
) -> list[dict[str, Any]]:
    """`staffing_rows` for each channel against its own threshold, then `combine`d."""
    rows = {
        channel: staffing_rows(
            days, weeks_used, day_start, interval_s, target_sl, thresholds[channel], shrinkage
        )
        for channel, days in per_channel.items()
    }
    return combine(rows)


def combine(per_channel: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each channel staffed apart (its own AHT, patience and service-level target; agents of
    one channel do not answer another's queue), then the day's rows: agents added up, the
    rates as means weighted by each channel's forecast, and the mix under `by_channel`."""
    channels = sorted(c for c, rows in per_channel.items() if rows)
    if not channels:
        return []
    out: list[dict[str, Any]] = []
    for i, first in enumerate(per_channel[channels[0]]):
        parts = {c: per_channel[c][i] for c in channels}
        row: dict[str, Any] = {"start": first["start"], "end": first["end"]}
        for name in SUMMED_STAFF:
            row[name] = sum(p[name] for p in parts.values())
        row["forecast_offered"] = round(row["forecast_offered"], 3)
        row["erlangs"] = round(row["erlangs"], 4)
        for name in WEIGHTED_STAFF:
            row[name] = _weighted(parts.values(), name)
        row["expected_sl"] = row["service_level_erlang_c"]
        row["by_channel"] = {
            c: {name: p[name] for name in (*SUMMED_STAFF, "service_level_erlang_c")}
            for c, p in parts.items()
        }
        out.append(row)
    return out


def _weighted(rows: Iterable[dict[str, Any]], name: str) -> float | None:
    pairs = [(float(r["forecast_offered"]), float(r[name])) for r in rows if r[name] is not None]
    if len(pairs) == 1:
        return pairs[0][1]  # one channel: its own figure, as computed
    weight = sum(w for w, _ in pairs)
    if weight <= 0:
        return None
    return round(sum(w * v for w, v in pairs) / weight, 4)


def _aht(c: dict[str, int]) -> float | None:
    return kpis.mean_seconds(c.get(kpis.HANDLE_MS, 0), c.get(kpis.HANDLED, 0))


# Cached: a forecast asks the same question on every request. Callers only read the answer.
@functools.lru_cache(maxsize=8192)
def _agents(
    rate: float,
    aht: float | None,
    patience: float | None,
    target: float,
    threshold: int,
    shrinkage: float,
) -> dict[str, Any]:
    if aht is None or rate <= 0:
        return {
            "erlangs": 0.0,
            "agents_erlang_c": 0,
            "scheduled_erlang_c": 0,
            "service_level_erlang_c": None,
            "asa_seconds": None,
            "agents_erlang_a": 0,
            "scheduled_erlang_a": 0,
            "service_level_erlang_a": None,
            "abandon_rate_erlang_a": None,
        }
    c = erlang.agents_erlang_c(rate, aht, target, threshold)
    out: dict[str, Any] = {
        "erlangs": round(rate * aht, 4),
        "agents_erlang_c": c.agents,
        "scheduled_erlang_c": math.ceil(c.agents / (1 - shrinkage) - 1e-9),
        "service_level_erlang_c": round(c.service_level, 4),
        "asa_seconds": round(c.asa_seconds, 2) if c.asa_seconds is not None else None,
    }
    if patience is None:  # no abandons seen: Erlang A has nothing to add
        out.update(
            agents_erlang_a=c.agents,
            scheduled_erlang_a=out["scheduled_erlang_c"],
            service_level_erlang_a=out["service_level_erlang_c"],
            abandon_rate_erlang_a=None,
        )
        return out
    a = erlang.agents_erlang_a(rate, aht, patience, target, threshold)
    out.update(
        agents_erlang_a=a.agents,
        scheduled_erlang_a=math.ceil(a.agents / (1 - shrinkage) - 1e-9),
        service_level_erlang_a=round(a.service_level, 4),
        abandon_rate_erlang_a=round(a.abandon_probability or 0.0, 4),
    )
    return out
