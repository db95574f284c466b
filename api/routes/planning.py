"""Planners' endpoints: interval volume (JSON or CSV), the weekly heat map, Erlang staffing.

History comes from SQL; the open 15-minute interval comes from the live state and is marked
partial. Every refusal is a 4xx whose message starts with the parameter at fault.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from services import problems
from services.contract import Channel

from ..deps import ApiState, State
from ..documents import (
    HeatmapDocument,
    ProductivityDocument,
    StaffingDocument,
    VolumeDocument,
)
from ..live_reader import iso
from ..planning.buckets import (
    GROUPS,
    RangeError,
    VolumeQuery,
    bucket_spans,
    local_floor,
    plan_range,
)
from ..planning.reader import HistoryReader, with_empty_buckets
from ..planning.staffing import heatmap, staffing_by_channel
from ..planning.sums import VOLUME_COLUMNS
from .params import in_range, when, zone_of

router = APIRouter(prefix="/api/v1", tags=["history"])

Interval = Literal["15m", "30m", "1h", "1d", "1w"]
TzParam = Annotated[
    str | None,
    Query(description="IANA time zone (default: the setting)", examples=["Europe/Paris"]),
]
ChannelParam = Annotated[Channel | None, Query(description="Only this channel")]
QueueParam = Annotated[str | None, Query(description="Only this queue", max_length=128)]

VOLUME_EXAMPLE = {
    "interval": "1h",
    "timezone": "Europe/Paris",
    "from": "2026-11-23T00:00:00+01:00",
    "to": "2026-11-24T00:00:00+01:00",
    "group_by": ["channel"],
    "rows": [
        {
            "start": "2026-11-23T08:00:00Z",
            "end": "2026-11-23T09:00:00Z",
            "channel": "voice",
            "offered": 120,
            "answered": 110,
            "abandoned": 10,
            "abandon_rate": 0.083,
            "service_level": 0.81,
            "asa_seconds": 14.2,
            "aht_seconds": 251.0,
            "handled": 108,
            "logged_in_hours": 9.5,
            "labour_cost": 308.75,
            "cost_per_handled": 2.86,
            "handled_per_logged_in_hour": 11.37,
            "partial": False,
        }
    ],
    "cost": {"currency": "EUR", "configured": True},
}


def _cost(state: ApiState, reader: HistoryReader) -> dict[str, Any]:
    """The answer's cost settings: which currency, and whether any hourly cost is set."""
    return {"currency": state.settings.cost_currency, "configured": reader.costs.rates.configured()}


def _history(state: ApiState) -> HistoryReader:
    reader = state.history
    if reader is None:
        raise HTTPException(503, detail="history database is not configured")
    return reader


async def _check_queue(reader: HistoryReader, queue: str | None) -> None:
    if queue is not None and not await reader.known_queue(queue):
        raise HTTPException(404, detail=f"queue: unknown queue {queue!r}")


@router.get(
    "/volume",
    summary="Contacts per interval (15m to 1w) by channel and queue; JSON or CSV",
    response_model=VolumeDocument,
    response_model_exclude_unset=True,  # `warnings` only when there are some
    responses={
        200: {
            "content": {
                "application/json": {"example": VOLUME_EXAMPLE},
                "text/csv": {
                    "schema": {"type": "string", "description": "the rows (Accept: text/csv)"},
                    "example": "start,end,offered,...\n",
                },
            }
        },
        **problems.responses(404, 422, 503),
    },
)
async def volume(
    request: Request,
    state: State,
    interval: Interval = "1h",
    start: Annotated[str | None, Query(alias="from", examples=["2026-11-23"])] = None,
    end: Annotated[str | None, Query(alias="to", examples=["2026-11-24T00:00:00"])] = None,
    tz: TzParam = None,
    channel: ChannelParam = None,
    queue: QueueParam = None,
    group_by: Annotated[str, Query(description="Comma list of channel, queue")] = "",
    fill: Annotated[
        Literal["none", "zero"],
        Query(description="zero: a row for every bucket of the range, empty ones with zeros"),
    ] = "none",
) -> Any:
    zone = zone_of(state, tz)
    groups = tuple(g for g in (x.strip() for x in group_by.split(",")) if g)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise HTTPException(422, detail=f"group_by: unknown {unknown}; use channel and/or queue")
    now = state.clock.now()
    try:
        first, last = plan_range(
            interval, when("from", start, zone), when("to", end, zone), zone, now
        )
    except RangeError as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    reader = _history(state)
    query = VolumeQuery(
        interval, first, last, zone, channel.value if channel else None, queue, groups
    )
    try:
        await _check_queue(reader, queue)
        rows, live_ok = await reader.volume(query, now)
        demo = await reader.has_demo(first, last)
    except SQLAlchemyError as exc:
        raise HTTPException(503, detail="history database is unavailable") from exc
    if fill == "zero":
        rows = with_empty_buckets(rows, query, now, reader.options)
    try:
        cost_warnings = await reader.costs.add_to_rows(
            rows, int(first.timestamp()), int(last.timestamp()), query.channel, queue, groups
        )
    except SQLAlchemyError as exc:
        raise HTTPException(503, detail="history database is unavailable") from exc
    if "text/csv" in request.headers.get("accept", ""):
        return _csv(rows, groups)
    body: dict[str, Any] = {
        "interval": interval,
        "timezone": str(zone),
        "from": first.isoformat(),
        "to": last.isoformat(),
        "group_by": list(groups),
        "rows": rows,
        "cost": _cost(state, reader),
        "demo": demo,
    }
    warnings = cost_warnings
    if not live_ok:
        warnings = ["live state unavailable: the open interval is missing", *warnings]
    if warnings:
        body["warnings"] = warnings
    return body


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """OWASP's rule against CSV injection: a text cell a spreadsheet would run as a formula
    (a queue named `=HYPERLINK(...)`) gets a leading quote, so it is shown, not evaluated."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv(rows: list[dict[str, Any]], groups: tuple[str, ...]) -> Response:
    columns = [c for c in VOLUME_COLUMNS if c not in GROUPS or c in groups]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="volume.csv"'},
    )


@router.get(
    "/volume/heatmap",
    summary="Offered per hour of day x weekday: mean and p90 over weeks",
    response_model=HeatmapDocument,
    responses=problems.responses(404, 422, 503),
)
async def volume_heatmap(
    state: State,
    weeks: Annotated[int, Query(ge=1, le=52, description="Complete weeks before this one")] = 4,
    tz: TzParam = None,
    channel: ChannelParam = None,
    queue: QueueParam = None,
    current: Annotated[
        bool,
        Query(description="Also the current week so far, in the cells whose hour is over"),
    ] = False,
) -> dict[str, Any]:
    zone = zone_of(state, tz)
    reader = _history(state)
    now = datetime.fromtimestamp(state.clock.now(), zone)
    this_week = local_floor(now, "1w")
    starts = [
        (this_week.replace(tzinfo=None) - timedelta(weeks=n)).replace(tzinfo=zone)
        for n in range(weeks, 0, -1)
    ]
    try:
        await _check_queue(reader, queue)
        until = now if current else this_week
        only = channel.value if channel else None
        hourly = await reader.hourly_offered(starts[0], until, zone, only, queue)
        demo = await reader.has_demo(starts[0], until)
    except SQLAlchemyError as exc:
        raise HTTPException(503, detail="history database is unavailable") from exc
    return {
        "weeks": weeks,
        "timezone": str(zone),
        "from": starts[0].isoformat(),
        "to": this_week.isoformat(),
        "current_week_to": now.isoformat() if current else None,
        "cells": heatmap(hourly, starts, zone, now if current else None),
        "demo": demo,
    }


@router.get(
    "/staffing",
    summary="Forecast and Erlang C / Erlang A agents for each interval of a day",
    response_model=StaffingDocument,
    responses=problems.responses(404, 422, 503),
)
async def staffing(
    state: State,
    day: Annotated[
        date | None, Query(alias="date", description="Local day (default tomorrow)")
    ] = None,
    tz: TzParam = None,
    channel: ChannelParam = None,
    queue: QueueParam = None,
    target_sl: Annotated[float, Query(gt=0, le=0.999)] = 0.8,
    threshold: Annotated[
        int | None,
        Query(
            ge=1,
            le=86400,
            description="Seconds, for every channel (default: each channel's service-level "
            "threshold, CCPULSE_SL_THRESHOLDS_SECONDS, or the queue's)",
        ),
    ] = None,
    shrinkage: Annotated[float, Query(ge=0, lt=1)] = 0.3,
    interval: Literal["15m", "30m", "1h"] = "30m",
    weeks: Annotated[int | None, Query(ge=1, le=52)] = None,
) -> dict[str, Any]:
    zone = zone_of(state, tz)
    reader = _history(state)
    target = day or (datetime.fromtimestamp(state.clock.now(), zone).date() + timedelta(days=1))
    in_range("date", target)
    n_weeks = weeks or state.settings.staffing_weeks
    past = [target - timedelta(weeks=n) for n in range(1, n_weeks + 1)]
    per_channel: dict[str, list[dict[int, dict[str, int]]]] = {}
    try:
        await _check_queue(reader, queue)
        used = [d for d in past if await reader.has_rows(d, zone)]
        demo = bool(used) and await reader.has_demo(
            datetime.combine(min(used), datetime.min.time(), zone),
            datetime.combine(max(used) + timedelta(days=1), datetime.min.time(), zone),
        )
        for d in used:
            if channel is not None:
                found = {channel.value: await reader.day_intervals(d, zone, channel.value, queue)}
            else:
                found = await reader.day_intervals_by_channel(d, zone, queue)
            for name, day_rows in found.items():
                per_channel.setdefault(name, []).append(day_rows)
    except SQLAlchemyError as exc:
        raise HTTPException(503, detail="history database is unavailable") from exc
    thresholds = {
        name: threshold or state.settings.sl_threshold_for(name, queue) for name in per_channel
    }
    width = {"15m": 900, "30m": 1800, "1h": 3600}[interval]
    day_start = datetime.combine(target, datetime.min.time(), zone)
    # Erlang A for a large center costs tens of ms an interval: off the loop that serves the
    # websockets and /metrics (staffing's own cache makes a repeated request cheap).
    # No past week with history: no forecast, not a day of zeros (read as "0 agents needed").
    staff = (
        await asyncio.to_thread(
            staffing_by_channel,
            per_channel,
            thresholds,
            len(used),
            day_start,
            width,
            target_sl,
            shrinkage,
        )
        if used
        else []
    )
    return {
        "date": target.isoformat(),
        "timezone": str(zone),
        "interval": interval,
        "target_sl": target_sl,
        "threshold_seconds": threshold,
        "thresholds_seconds": thresholds,
        "shrinkage": shrinkage,
        "forecast": {
            "method": "mean of the same weekday and time over past weeks with history, "
            "each channel staffed against its own threshold"
            if used
            else f"no forecast: none of the last {n_weeks} weeks has history for this weekday",
            "weeks_used": [d.isoformat() for d in used],
        },
        "rows": staff,
        "generated": iso(state.clock.now()),
        "demo": demo,
    }


@router.get(
    "/productivity",
    summary="Per agent and day (or week): handled, logged-in hours, handled per hour, cost",
    response_model=ProductivityDocument,
    responses=problems.responses(422, 503),
)
async def productivity(
    state: State,
    interval: Literal["1d", "1w"] = "1d",
    start: Annotated[str | None, Query(alias="from", examples=["2026-11-23"])] = None,
    end: Annotated[str | None, Query(alias="to", examples=["2026-11-30"])] = None,
    tz: TzParam = None,
    agent: Annotated[str | None, Query(description="Only this agent", max_length=128)] = None,
) -> Any:
    """Contacts handled per logged-in hour and cost per handled contact, per agent
    (docs/metrics.md#cost): logged-in time is every state but offline."""
    zone = zone_of(state, tz)
    now = state.clock.now()
    try:
        first, last = plan_range(
            interval, when("from", start, zone), when("to", end, zone), zone, now
        )
    except RangeError as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    reader = _history(state)
    try:
        rows = await reader.costs.productivity(bucket_spans(interval, first, last), agent)
    except SQLAlchemyError as exc:
        raise HTTPException(503, detail="history database is unavailable") from exc
    return {
        "interval": interval,
        "timezone": str(zone),
        "from": first.isoformat(),
        "to": last.isoformat(),
        "rows": rows,
        "cost": _cost(state, reader),
    }
